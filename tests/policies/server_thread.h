/*  tests/policies/server_thread.h - the recarena-server that a policies suite talks to: one
    in-process server with one worker on a free loopback port, run on its own thread from the
    suite's setup to its teardown. Header-only, for one test file each (file-static state).    */
#ifndef RA_TESTS_POLICIES_SERVER_THREAD_H
#define RA_TESTS_POLICIES_SERVER_THREAD_H

#include <criterion/criterion.h>
#include <pthread.h>

#include "env/server/server.h"

static ra_server_t *S;
static pthread_t S_thread;


/* Starts S; its endpoint is ra_server_endpoint (S, 0). */
static void s_server_start (void)
{
  ra_server_opts_t o;
  ra_server_opts_default (&o);
  o.workers = 1;
  ra_error_t err;
  cr_assert_eq (ra_server_new (&o, &S, &err), RA_OK, "%s", err.message);
  cr_assert_eq (ra_server_bind (S, "tcp://127.0.0.1:*", &err), RA_OK, "%s", err.message);
  cr_assert_eq (pthread_create (&S_thread, NULL, ra_server_thread, S), 0);
}

static void s_server_stop (void)
{
  ra_server_stop (S);
  pthread_join (S_thread, NULL);
  ra_server_destroy (&S);
}

#endif
