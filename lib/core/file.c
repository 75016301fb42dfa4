/*
 * file.c: files into memory: whole small files read (config.json, an index),
 * weight files mapped or read. Regular files only: a FIFO or a device in
 * place of a model file fails instead of blocking or reading forever.
 */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buffer.h"
#include "core/errors.h"


static lzn_status open_regular_file(const char *path, int *fd_out, size_t *size_out) {
  /* O_NONBLOCK so that a FIFO in place of a file fails below instead of
   * blocking the open; it changes nothing for regular files. */
  const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return lzn_fail(LZN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return lzn_fail(LZN_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return lzn_fail(LZN_ERR_IO, "%s: not a regular file", path);
  }
  if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX) {
    close(fd);
    return lzn_fail(LZN_ERR_IO, "%s: size %lld does not fit in memory", path, (long long)st.st_size);
  }
  *fd_out = fd;
  *size_out = (size_t)st.st_size;
  return LZN_OK;
}

/* pread until size bytes are in, retrying on EINTR and short reads. */
static lzn_status read_exactly(int fd, const char *path, void *buffer, size_t size) {
  size_t done = 0;
  while (done < size) {
    size_t chunk = size - done;
    if (chunk > (size_t)1 << 30) chunk = (size_t)1 << 30; /* some kernels cap one read */
    const ssize_t got = pread(fd, (char *)buffer + done, chunk, (off_t)done);
    if (got < 0) {
      if (errno == EINTR) continue;
      return lzn_fail(LZN_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    }
    if (got == 0)
      return lzn_fail(LZN_ERR_IO, "%s: file shrank while being read (%zu of %zu bytes)", path, done, size);
    done += (size_t)got;
  }
  return LZN_OK;
}

lzn_status lzn_read_file(const char *path, char **bytes, size_t *size) {
  if (bytes != NULL) *bytes = NULL;
  if (size != NULL) *size = 0;
  if (path == NULL || bytes == NULL || size == NULL)
    return lzn_fail(LZN_ERR_INVALID_ARG, "lzn_read_file: path, bytes and size must not be NULL");
  int fd;
  size_t file_size;
  lzn_status status = open_regular_file(path, &fd, &file_size);
  if (status != LZN_OK) return status;
  if (file_size == SIZE_MAX) {
    close(fd);
    return lzn_fail(LZN_ERR_NOMEM, "%s: too large to read", path);
  }
  char *buffer = malloc(file_size + 1);
  if (buffer == NULL) {
    close(fd);
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path, file_size + 1);
  }
  status = read_exactly(fd, path, buffer, file_size);
  close(fd);
  if (status != LZN_OK) {
    free(buffer);
    return status;
  }
  buffer[file_size] = '\0';
  *bytes = buffer;
  *size = file_size;
  return LZN_OK;
}

/* The whole file in memory: mapped, or read into memory on huge pages
 * (lzn_alloc_weights). */
lzn_status lzn_file_load(const char *path, int use_mmap, void **bytes, size_t *size, int *mapped) {
  int fd;
  lzn_status status = open_regular_file(path, &fd, size);
  if (status != LZN_OK) return status;
  *bytes = NULL;
  *mapped = 0;
  if (*size == 0) { /* mmap refuses length 0; the parser reports the empty file */
    close(fd);
    return LZN_OK;
  }
  if (use_mmap) {
    void *map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    close(fd);
    if (map == MAP_FAILED) return lzn_fail(LZN_ERR_IO, "%s: cannot mmap: %s", path, strerror(err));
    /* Where the page cache does not hold the file yet, ask for it in 2 MiB
     * folios, mapped whole: the load touches tensors out of the file's
     * order (a header, scales, a transposition), and those faults alone
     * read it in mostly 4 KiB pages (measured: 1.1 of 3.5 GiB of a 7B file
     * on 2 MiB pages; 3.5 with this), which decode then reads at a TLB miss
     * every 4 KiB (core/buffer.h). Advice: ignored where not supported. */
    madvise(map, *size, MADV_HUGEPAGE);
    *bytes = map;
    *mapped = 1;
    return LZN_OK;
  }
  *bytes = lzn_alloc_weights(*size);
  if (*bytes == NULL) {
    close(fd);
    return lzn_fail(LZN_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path, *size);
  }
  status = read_exactly(fd, path, *bytes, *size);
  close(fd);
  if (status != LZN_OK) {
    lzn_free_weights(*bytes, *size);
    *bytes = NULL;
  }
  return status;
}

void lzn_file_unload(void *bytes, size_t size, int mapped) {
  if (bytes == NULL) return;
  if (mapped) munmap(bytes, size);
  else lzn_free_weights(bytes, size);
}
