/*
 * errors.c: status names, and the per-thread error message.
 */
#include <stdarg.h>
#include <stdio.h>

#include "core/errors.h"
#include "cpu/cpu.h"

/* One message per thread: two threads failing at once never see each
 * other's text (stb's global failure string is the example not to follow). */
static _Thread_local char last_error[512];

lzn_status lzn_fail(lzn_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

LZN_API const char *lzn_last_error(void) { return last_error; }

LZN_API const char *lzn_status_str(lzn_status status) {
  switch (status) {
  case LZN_OK: return "LZN_OK";
  case LZN_ERR_INVALID_ARG: return "LZN_ERR_INVALID_ARG";
  case LZN_ERR_IO: return "LZN_ERR_IO";
  case LZN_ERR_FORMAT: return "LZN_ERR_FORMAT";
  case LZN_ERR_UNSUPPORTED: return "LZN_ERR_UNSUPPORTED";
  case LZN_ERR_NOMEM: return "LZN_ERR_NOMEM";
  case LZN_ERR_CONTEXT_FULL: return "LZN_ERR_CONTEXT_FULL";
  case LZN_ERR_ISA: return "LZN_ERR_ISA";
  case LZN_ERR_BACKEND: return "LZN_ERR_BACKEND";
  case LZN_ERR_CANCELLED: return "LZN_ERR_CANCELLED";
  }
  return "LZN_UNKNOWN_STATUS";
}
