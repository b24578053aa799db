/*  tests/protocol/gen_golden.c - writes tests/data/golden/<name>.frames and <name>.json from the
    builders in golden_msgs.c. Built with the tests, never run by them: run it by hand after a
    deliberate change to the wire format and commit the result.
    Usage: gen_golden [out-dir]   (default: RA_SOURCE_DIR/tests/data/golden)                      */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden_msgs.h"

static void s_json_str (FILE *f, const char *s, size_t n)
{
  fputc ('"', f);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char) s[i];
    if (ch == '"' || ch == '\\')
      fprintf (f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf (f, "\\u%04x", ch);
    else
      fputc (ch, f);
  }
  fputc ('"', f);
}

static void s_json (FILE *f, const msgpack_object *o, int indent)
{
  switch (o->type) {
  case MSGPACK_OBJECT_NIL: fputs ("null", f); break;
  case MSGPACK_OBJECT_BOOLEAN: fputs (o->via.boolean ? "true" : "false", f); break;
  case MSGPACK_OBJECT_POSITIVE_INTEGER: fprintf (f, "%llu", (unsigned long long) o->via.u64); break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER: fprintf (f, "%lld", (long long) o->via.i64); break;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64: {
    char buf[64];
    snprintf (buf, sizeof buf, "%.17g", o->via.f64);
    if (!strpbrk (buf, ".eEn"))
      strcat (buf, ".0");
    fputs (buf, f);
    break;
  }
  case MSGPACK_OBJECT_STR: s_json_str (f, o->via.str.ptr, o->via.str.size); break;
  case MSGPACK_OBJECT_ARRAY:
    fputc ('[', f);
    for (uint32_t i = 0; i < o->via.array.size; i++) {
      if (i)
        fputs (", ", f);
      s_json (f, &o->via.array.ptr[i], indent);
    }
    fputc (']', f);
    break;
  case MSGPACK_OBJECT_MAP:
    fputs ("{", f);
    for (uint32_t i = 0; i < o->via.map.size; i++) {
      fprintf (f, "%s\n%*s", i ? "," : "", indent + 2, "");
      s_json (f, &o->via.map.ptr[i].key, indent + 2);
      fputs (": ", f);
      s_json (f, &o->via.map.ptr[i].val, indent + 2);
    }
    fprintf (f, "\n%*s}", indent, "");
    break;
  default: fputs ("null", f); break;
  }
}

int main (int argc, char **argv)
{
  if (argc > 2) {
    fprintf (stderr, "usage: %s [OUT_DIR] (default: the source tree's tests/data/golden)\n", argv[0]);
    return 2;
  }
  const char *dir = argc > 1 ? argv[1] : RA_SOURCE_DIR "/tests/data/golden";
  int failures = 0;
  for (int g = 0; g < ra_golden_count; g++) {
    ra_msg_out_t m;
    ra_msg_out_init (&m);
    ra_golden[g].build (&m);
    size_t len;
    unsigned char *buf = ra_golden_serialize (&m, &len);
    char path[1024];
    snprintf (path, sizeof path, "%s/%s.frames", dir, ra_golden[g].name);
    FILE *f = fopen (path, "wb");
    if (!f || fwrite (buf, 1, len, f) != len) {
      fprintf (stderr, "%s:%d: cannot write %s\n", __FILE__, __LINE__, path);
      failures++;
    }
    if (f)
      fclose (f);
    free (buf);

    msgpack_unpacked unp;
    msgpack_unpacked_init (&unp);
    size_t off = 0;
    snprintf (path, sizeof path, "%s/%s.json", dir, ra_golden[g].name);
    f = NULL;
    if (msgpack_unpack_next (&unp, m.head.data, m.head.size, &off) != MSGPACK_UNPACK_SUCCESS)
      fprintf (stderr, "%s:%d: %s does not decode\n", __FILE__, __LINE__, ra_golden[g].name);
    else if (!(f = fopen (path, "w")))
      fprintf (stderr, "%s:%d: cannot write %s\n", __FILE__, __LINE__, path);
    if (!f) {
      msgpack_unpacked_destroy (&unp);
      ra_msg_out_fini (&m);
      ra_golden_fini ();
      return 1;
    }
    fprintf (f, "{\n  \"name\": \"%s\",\n  \"kind\": \"%s\",\n  \"frames\": %d,\n  \"header\": ",
             ra_golden[g].name, ra_golden[g].is_request ? "request" : "reply", 1 + m.nframes);
    s_json (f, &unp.data, 2);
    fputs (",\n  \"tensor_frames\": [", f);
    for (int i = 0; i < m.nframes; i++) {
      fprintf (f, "%s\n    {\"frame\": %d, \"nbytes\": %zu, \"hex\": \"", i ? "," : "", i + 1, m.frames[i].nbytes);
      for (size_t b = 0; b < m.frames[i].nbytes; b++)
        fprintf (f, "%02x", ((const unsigned char *) m.frames[i].data)[b]);
      fputs ("\"}", f);
    }
    fputs (m.nframes ? "\n  ]\n}\n" : "]\n}\n", f);
    fclose (f);
    msgpack_unpacked_destroy (&unp);
    ra_msg_out_fini (&m);
  }
  ra_golden_fini ();
  printf ("wrote %d golden messages to %s\n", ra_golden_count, dir);
  return failures ? 1 : 0;
}
