/*  tests/server/test_curve.c - CURVE end to end: a server thread with a key pair and two allowed
    client keys; the handshake is accepted for allowed keys and refused for others and for
    plaintext clients; a session belongs to the key that made it (another key gets
    NO_SUCH_HANDLE, the same key on a new connection resumes it); stats show a key its own. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "env/server/server.h"
#include "protocol/client.h"

#define ENV "ECommerce-v1"

static ra_server_t *S;
static pthread_t S_thread;
static char S_ep[256];
static char Srv_pub[41], Srv_sec[41], A_pub[41], A_sec[41], B_pub[41], B_sec[41], X_pub[41], X_sec[41];


static void setup (void)
{
  cr_assert_eq (zmq_curve_keypair (Srv_pub, Srv_sec), 0);
  cr_assert_eq (zmq_curve_keypair (A_pub, A_sec), 0);
  cr_assert_eq (zmq_curve_keypair (B_pub, B_sec), 0);
  cr_assert_eq (zmq_curve_keypair (X_pub, X_sec), 0);   /* never allowed */
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  snprintf (o.curve_secret, sizeof o.curve_secret, "%s", Srv_sec);
  const char *allow[2] = { A_pub, B_pub };
  o.allow_keys = allow;
  o.n_allow_keys = 2;
  ra_error_t err;
  cr_assert_eq (ra_server_new (&o, &S, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_server_bind (S, "tcp://127.0.0.1:*", &err), RA_OK, "%s", err.message);
  snprintf (S_ep, sizeof S_ep, "%s", ra_server_endpoint (S, 0));
  cr_assert_eq (pthread_create (&S_thread, NULL, ra_server_thread, S), 0);
}

static void teardown (void)
{
  ra_server_stop (S);
  pthread_join (S_thread, NULL);
  ra_server_destroy (&S);
}

TestSuite (curve, .init = setup, .fini = teardown, .timeout = 60);

static ra_client_t *s_client (const char *pub, const char *sec, int timeout_ms, ra_err_t *rc)
{
  ra_client_curve_t k = { .server_key = Srv_pub, .public_key = pub, .secret_key = sec };
  ra_client_t *c = NULL;
  ra_error_t err;
  *rc = ra_client_new_curve (S_ep, timeout_ms, &k, &c, &err);
  return c;
}

Test (curve, allowed_keys_connect_and_others_are_refused)
{
  ra_err_t rc;
  ra_client_t *a = s_client (A_pub, A_sec, 5000, &rc);
  cr_assert_eq (rc, RA_OK, "an allowed key was refused");
  ra_client_destroy (&a);
  ra_client_t *x = s_client (X_pub, X_sec, 400, &rc);
  cr_assert_eq (rc, RA_ERR_TIMEOUT, "a key not allowed got an answer");
  cr_assert_null (x);
  ra_client_t *plain = NULL;
  ra_error_t err;
  cr_assert_eq (ra_client_new (S_ep, 400, &plain, &err), RA_ERR_TIMEOUT, "a plaintext client got an answer");
  /* A client that knows the wrong server key never completes the handshake either. */
  ra_client_curve_t k = { .server_key = X_pub, .public_key = A_pub, .secret_key = A_sec };
  cr_assert_eq (ra_client_new_curve (S_ep, 400, &k, &plain, &err), RA_ERR_TIMEOUT);
  k.server_key = "too short";
  cr_assert_eq (ra_client_new_curve (S_ep, 400, &k, &plain, &err), RA_ERR_BAD_CONFIG);
}

Test (curve, a_session_belongs_to_its_key_and_resumes_on_a_new_connection)
{
  ra_err_t rc;
  ra_client_t *a = s_client (A_pub, A_sec, 5000, &rc), *b = s_client (B_pub, B_sec, 5000, &rc);
  cr_assert (a && b);
  ra_client_env_t env;
  ra_error_t err;
  cr_assert_eq (ra_client_make (a, ENV, 3, NULL, &env, &err), RA_OK, "%s", err.message);
  ra_step_result_t r;
  cr_assert_eq (ra_client_reset (b, &env, NULL, NULL, &r, &err), RA_ERR_NO_SUCH_HANDLE,
                "another key reset the session");
  cr_assert_eq (ra_client_close (b, &env, &err), RA_ERR_NO_SUCH_HANDLE, "another key closed it");
  ra_server_stats_t st;
  cr_assert_eq (ra_client_stats (b, &st, &err), RA_OK);
  cr_assert_eq (st.sessions, 0, "stats showed another key's session");
  cr_assert_eq (ra_client_stats (a, &st, &err), RA_OK);
  cr_assert_eq (st.sessions, 1);
  cr_assert_eq (st.envs, 3);
  /* The owner reconnects (a new connection, the same key) and carries on. */
  ra_client_destroy (&a);
  ra_client_t *a2 = s_client (A_pub, A_sec, 5000, &rc);
  cr_assert (a2);
  cr_assert_eq (ra_client_reset (a2, &env, NULL, NULL, &r, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_client_close (a2, &env, &err), RA_OK, "%s", err.message);
  ra_client_env_fini (&env);
  ra_client_destroy (&a2);
  ra_client_destroy (&b);
}
