/*
 * fuzz_request.c: lzn-server's request parser (cli/server/request.c,
 * JSON body -> srv_request) on arbitrary bytes. The first byte picks the
 * endpoint (bit 0: chat), the rest is the body (not NUL-terminated).
 *
 * On success the request must hold what the server relies on: a prompt
 * (text or token ids) or at least one message with role and content,
 * max_tokens -1 or >= 1, sampling values in range, non-empty stop strings.
 * A parsed chat is then rendered (lzn_chat_apply_template), as the server does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/server/request.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const int chat = data[0] & 1;
  srv_request r;
  srv_error err;
  if (!srv_request_parse((const char *)data + 1, size - 1, chat, &r, &err)) {
    FUZZ_CHECK(err.http_status == 400 || err.http_status == 500);
    FUZZ_CHECK(err.message[0] != '\0' && err.type != NULL);
    FUZZ_CHECK(r.prompt == NULL && r.prompt_ids == NULL && r.messages == NULL && r.n_stop == 0);
    return 0;
  }
  FUZZ_CHECK(r.chat == chat);
  if (chat) {
    FUZZ_CHECK(r.messages != NULL && r.n_messages > 0);
    for (size_t i = 0; i < r.n_messages; i++) FUZZ_CHECK(r.messages[i].role && r.messages[i].content);
    size_t len = 0;
    const lzn_status st = lzn_chat_apply_template("chatml", r.messages, r.n_messages, 1, NULL, 0, &len);
    FUZZ_CHECK(st == LZN_ERR_INVALID_ARG && len > 0);
    char *text = malloc(len + 1);
    FUZZ_CHECK(text && lzn_chat_apply_template("chatml", r.messages, r.n_messages, 1, text, len + 1, &len) == LZN_OK);
    free(text);
  } else {
    FUZZ_CHECK((r.prompt != NULL && r.prompt_len > 0) != (r.prompt_ids != NULL && r.n_prompt_ids > 0));
    for (int i = 0; i < r.n_prompt_ids; i++) FUZZ_CHECK(r.prompt_ids[i] >= 0);
  }
  FUZZ_CHECK(r.max_tokens == -1 || r.max_tokens >= 1);
  FUZZ_CHECK(r.sampling.temperature >= 0 && r.sampling.top_p > 0 && r.sampling.top_p <= 1);
  FUZZ_CHECK(r.sampling.min_p >= 0 && r.sampling.min_p <= 1 && r.sampling.top_k >= 0);
  FUZZ_CHECK(r.n_stop >= 0 && r.n_stop <= SCHED_MAX_STOP);
  for (int i = 0; i < r.n_stop; i++) FUZZ_CHECK(r.stop[i] && r.stop[i][0]);
  FUZZ_CHECK(r.stream == 0 || r.stream == 1);
  srv_request_free(&r);
  return 0;
}
