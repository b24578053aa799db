/*  agents/nn/tools/nn_checkpoint_demo.c - writes a small checkpoint and its expected values.

    Usage: nn_checkpoint_demo OUT.safetensors OUT_EXPECTED.json
    Builds a 2-tensor network on the cpu backend (seed 7), takes 3 Adam steps on a fixed gradient,
    saves it, and writes the same values as JSON {"<file tensor name>": [flat floats], ...,
    "step": 3} so tests/python/test_nn_checkpoint.py can compare them with numpy alone.         */
#include <stdio.h>
#include <stdlib.h>

#include "agents/nn/nn.h"

static void s_dump (FILE *f, const char *name, const float *x, size_t n, const char *sep)
{
  fprintf (f, "\"%s\": [", name);
  for (size_t i = 0; i < n; i++)
    fprintf (f, "%.9g%s", (double) x[i], i + 1 < n ? ", " : "");
  fprintf (f, "]%s\n", sep);
}

int main (int argc, char **argv)
{
  if (argc != 3) {
    fprintf (stderr, "usage: %s OUT.safetensors OUT_EXPECTED.json\n", argv[0]);
    return 2;
  }
  ra_error_t err;
  ra_nn_backend_t *be = NULL;
  if (ra_nn_backend_open ("cpu", NULL, &be, &err) != RA_OK) {
    fprintf (stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.message);
    return 1;
  }
  int code = 1;
  FILE *f = NULL;
  ra_nn_params_t *p = ra_nn_params_new (be, 1, 7);
  int w = ra_nn_params_add (p, "l0.w", 2, (int[]) { 3, 4 });
  int b = ra_nn_params_add (p, "l0.b", 1, (int[]) { 3 });
  if (ra_nn_params_alloc (p, &err) != RA_OK) {
    fprintf (stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.message);
    goto out;
  }
  ra_nn_params_init (p, 1.0f);
  ra_nn_adam_t adam = { .lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f };
  for (int s = 0; s < 3; s++) {
    ra_nn_params_zero_grad (p);
    for (size_t i = 0; i < p->n; i++)
      p->grad[i] = 0.1f * p->data[i] + 0.01f * (float) (i % 5) - 0.02f;
    ra_nn_adam_step (p, &adam, &err);
  }
  if (ra_nn_checkpoint_save (p, argv[1], &err) != RA_OK) {
    fprintf (stderr, "%s:%d: %s\n", __FILE__, __LINE__, err.message);
    goto out;
  }
  f = fopen (argv[2], "w");
  if (!f) {
    fprintf (stderr, "%s:%d: cannot write %s\n", __FILE__, __LINE__, argv[2]);
    goto out;
  }
  fprintf (f, "{\n");
  const int ts[2] = { w, b };
  for (int k = 0; k < 2; k++) {
    const ra_nn_tensor_t *t = &p->tensors[ts[k]];
    char name[96];
    s_dump (f, t->name, p->data + t->offset, t->numel, ",");
    snprintf (name, sizeof name, "adam_m.%s", t->name);
    s_dump (f, name, p->adam_m + t->offset, t->numel, ",");
    snprintf (name, sizeof name, "adam_v.%s", t->name);
    s_dump (f, name, p->adam_v + t->offset, t->numel, ",");
  }
  fprintf (f, "\"step\": %d\n}\n", ra_nn_params_steps (p));
  code = 0;
out:
  if (f && fclose (f) != 0) {
    fprintf (stderr, "%s:%d: cannot write %s\n", __FILE__, __LINE__, argv[2]);
    code = 1;
  }
  ra_nn_params_destroy (&p);
  ra_nn_backend_destroy (&be);
  return code;
}
