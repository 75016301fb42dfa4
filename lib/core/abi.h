/*
 * abi.h: structs that grow without breaking older callers (lazyneuron.h,
 * "ABI"). Private.
 *
 * Every public struct starts with size_t struct_size. Each struct keeps the
 * list of its released sizes, oldest first, the current one last: its
 * sizeof in that release's header, and where its fields ended (an older
 * struct's trailing padding may hold garbage where a newer field now lies,
 * so only fields_end bytes of it are ever read).
 */
#ifndef LZN_CORE_ABI_H
#define LZN_CORE_ABI_H

#include <stddef.h>

#include "lazyneuron.h"

typedef struct lzn_struct_size {
  size_t size;       /* sizeof in that release */
  size_t fields_end; /* offset just past its last field */
} lzn_struct_size;

/* A caller's parameter struct src (any released size) as the current one:
 * dst = defaults, then the fields src has, then dst->struct_size = the
 * current size. Statuses: OK, INVALID_ARG (src's struct_size not released:
 * the message names fn and the sizes it takes). */
lzn_status lzn_params_read(void *dst, const void *defaults, const void *src, const lzn_struct_size *sizes,
                           size_t n_sizes, const char *fn);

/* lzn_*_params_init: dst = the defaults' fields up to a released
 * struct_size, with that struct_size. Statuses: OK, INVALID_ARG. */
lzn_status lzn_params_fill(void *dst, size_t struct_size, const void *defaults, const lzn_struct_size *sizes,
                           size_t n_sizes, const char *fn);

/* An output struct: the caller's dst->struct_size must be a released size;
 * dst gets the fields of full (a current struct) that it has, and keeps its
 * struct_size. Statuses: OK, INVALID_ARG. */
lzn_status lzn_out_write(void *dst, const void *full, const lzn_struct_size *sizes, size_t n_sizes,
                         const char *fn);

/* The released size of struct_size in sizes, or NULL. */
const lzn_struct_size *lzn_struct_size_find(size_t struct_size, const lzn_struct_size *sizes, size_t n_sizes);

#define LZN_N_SIZES(sizes) (sizeof(sizes) / sizeof((sizes)[0]))

/* A function whose ABI changed in a release keeps every version in the
 * shared library (ELF symbol versions, lib/lazyneuron.map): the current one
 * is the default that programs link against (and what a static link and
 * dlsym get), an older one is bound only by programs built before. E.g.
 *     LZN_SYMVER_DEFAULT(lzn_model_get_info_v0_3, lzn_model_get_info, LZN_0.3)
 *     LZN_SYMVER_OLD(lzn_model_get_info_v0_2, lzn_model_get_info, LZN_0.2) */
#define LZN_SYMVER_DEFAULT(impl, name, version) __asm__(".symver " #impl ", " #name "@@" #version);
#define LZN_SYMVER_OLD(impl, name, version) __asm__(".symver " #impl ", " #name "@" #version);

#endif /* LZN_CORE_ABI_H */
