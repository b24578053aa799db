/*  env/server/curve.c - CURVE on the server socket and its ZAP handler (docs/protocol.md section
    "Security").

    With opts.curve_secret set, the ROUTER socket is a CURVE server: traffic is encrypted and every
    connection proves it holds a client secret key. libzmq asks the ZAP handler (RFC 27) over
    inproc://zeromq.zap.01 whether a key may connect; this handler admits exactly the keys of
    opts.allow_keys and names the connection by its public key in Z85 (the "User-Id" of every
    message it sends), which is what sessions belong to.
    Owns: the handler's thread and REP socket. Threading: the thread only reads srv->allow (fixed
    after ra_server_new) and its stop flag.                                                      */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "env/server/server_int.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"

/* Sends one ZAP reply: version, request id, status code and text, user id, empty metadata. */
static void s_zap_reply (void *sock, const zmq_msg_t *req_id, const char *code, const char *text,
                         const char *user)
{
  zmq_send (sock, "1.0", 3, ZMQ_SNDMORE);
  zmq_send (sock, zmq_msg_data ((zmq_msg_t *) req_id), zmq_msg_size ((zmq_msg_t *) req_id), ZMQ_SNDMORE);
  zmq_send (sock, code, strlen (code), ZMQ_SNDMORE);
  zmq_send (sock, text, strlen (text), ZMQ_SNDMORE);
  zmq_send (sock, user, strlen (user), ZMQ_SNDMORE);
  zmq_send (sock, "", 0, 0);
}

/* Answers one ZAP request: frames version, request id, domain, address, routing id, mechanism,
   then the mechanism's credentials (CURVE: the client's 32-byte public key). */
static void s_zap_answer (ra_server_t *srv, void *sock)
{
  zmq_msg_t f[8];
  int n = 0;
  for (bool more = true; more;) {
    zmq_msg_t tmp, *m = n < 8 ? &f[n] : &tmp;
    zmq_msg_init (m);
    if (zmq_msg_recv (m, sock, 0) < 0) {
      zmq_msg_close (m);
      break;
    }
    more = zmq_msg_more (m);
    if (m == &tmp)
      zmq_msg_close (m);
    else
      n++;
  }
  if (n < 2) {
    for (int i = 0; i < n; i++)
      zmq_msg_close (&f[i]);
    return;
  }
  char key[RA__OWNER_MAX] = "";
  bool curve = n >= 7 && zmq_msg_size (&f[5]) == 5 && memcmp (zmq_msg_data (&f[5]), "CURVE", 5) == 0
               && zmq_msg_size (&f[6]) == 32;
  if (curve)
    zmq_z85_encode (key, zmq_msg_data (&f[6]), 32);
  bool ok = false;
  for (int i = 0; curve && i < srv->nallow && !ok; i++)
    ok = strcmp (srv->allow[i], key) == 0;
  if (ok)
    s_zap_reply (sock, &f[1], "200", "OK", key);
  else
    s_zap_reply (sock, &f[1], "400", curve ? "client key not allowed" : "CURVE required", "");
  for (int i = 0; i < n; i++)
    zmq_msg_close (&f[i]);
}

static void *s_zap_main (void *arg)
{
  ra_server_t *srv = arg;
  while (!atomic_load (&srv->zap_stop)) {
    zmq_pollitem_t item = { srv->zap, 0, ZMQ_POLLIN, 0 };
    int rc = zmq_poll (&item, 1, 100);
    if (rc < 0 && zmq_errno () == ETERM)
      break;
    if (rc > 0)
      s_zap_answer (srv, srv->zap);
  }
  return NULL;
}

ra_err_t ra__curve_start (ra_server_t *srv, ra_error_t *err)
{
  if (!srv->opts.curve_secret[0])
    return RA_OK;
  if (!zmq_has ("curve"))
    return ra_error_set (err, RA_ERR_TRANSPORT, -1, "this libzmq was built without CURVE");
  uint8_t bin[32];
  if (strlen (srv->opts.curve_secret) != 40 || !zmq_z85_decode (bin, srv->opts.curve_secret))
    return ra_error_set (err, RA_ERR_BAD_CONFIG, -1,
                         "the CURVE secret key must be 40 Z85 characters (recarena-server --gen-keys)");
  memset (bin, 0, sizeof bin);
  if (!(srv->zap = zmq_socket (srv->zctx, ZMQ_REP)) || zmq_bind (srv->zap, S_ZAP_ENDPOINT) != 0)
    return ra_error_set (err, RA_ERR_TRANSPORT, -1, "cannot start the ZAP handler: %s",
                         zmq_strerror (zmq_errno ()));
  atomic_store (&srv->zap_stop, 0);
  if (pthread_create (&srv->zap_thread, NULL, s_zap_main, srv) != 0) {
    zmq_close (srv->zap);
    srv->zap = NULL;
    return ra_error_set (err, RA_ERR_INTERNAL, -1, "cannot start the ZAP handler thread");
  }
  srv->zap_running = true;
  int one = 1;
  if (zmq_setsockopt (srv->router, ZMQ_CURVE_SERVER, &one, sizeof one) != 0
      || zmq_setsockopt (srv->router, ZMQ_CURVE_SECRETKEY, srv->opts.curve_secret, 41) != 0
      || zmq_setsockopt (srv->router, ZMQ_ZAP_DOMAIN, "recarena", 8) != 0)
    return ra_error_set (err, RA_ERR_TRANSPORT, -1, "cannot make the socket a CURVE server: %s",
                         zmq_strerror (zmq_errno ()));
  return RA_OK;
}

void ra__curve_stop (ra_server_t *srv)
{
  if (srv->zap_running) {
    atomic_store (&srv->zap_stop, 1);
    pthread_join (srv->zap_thread, NULL);
    srv->zap_running = false;
  }
  if (srv->zap) {
    int zero = 0;
    zmq_setsockopt (srv->zap, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close (srv->zap);
    srv->zap = NULL;
  }
}
