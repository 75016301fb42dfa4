/*
 * errors.h: how every part of the library fails. Private.
 */
#ifndef LZN_ERRORS_H
#define LZN_ERRORS_H

#include "lazyneuron.h"

/* Records a printf-style message as this thread's lzn_last_error() and
 * returns status, so a failure reads: return lzn_fail(LZN_ERR_IO, "...", ...). */
lzn_status lzn_fail(lzn_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* LZN_ERRORS_H */
