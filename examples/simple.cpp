// simple.cpp: examples/simple.c in C++17, with the handles owned by
// std::unique_ptr and failures turned into exceptions. It shows that
// <lazyneuron.h> is usable from C++ as it is (extern "C", no casts needed).
//
//   simple-cpp [--mode sparse|dense|auto] [--threads N] MODEL_DIR [TOKEN_ID...]
//
// Build against an installed copy:
//   c++ -std=c++17 -o simple-cpp simple.cpp $(pkg-config --cflags --libs lazyneuron)
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include <lazyneuron.h>

namespace lzn {

// A failed lazyneuron call: its status and the message it left for this thread.
class Error : public std::runtime_error {
 public:
  Error(const std::string &what, lzn_status status)
      : std::runtime_error(what + " failed: " + lzn_status_str(status) + ": " + lzn_last_error()),
        status_(status) {}
  lzn_status status() const { return status_; }

 private:
  lzn_status status_;
};

inline void check(lzn_status status, const char *what) {
  if (status != LZN_OK) throw Error(what, status);
}

struct ModelDeleter {
  void operator()(lzn_model *m) const { lzn_model_free(m); }
};
struct ContextDeleter {
  void operator()(lzn_context *c) const { lzn_context_free(c); }
};

// Read-only once loaded: may be shared by many contexts, which must not outlive it.
class Model {
 public:
  explicit Model(const std::string &path, bool use_mmap = true) {
    lzn_model_params params;  // every field, at this header's size (lazyneuron.h, "ABI")
    lzn_model_params_init(&params, sizeof params);
    params.use_mmap = use_mmap ? 1 : 0;
    lzn_model *raw = nullptr;
    check(lzn_model_load(path.c_str(), &params, &raw), "lzn_model_load");
    handle_.reset(raw);
    info_.struct_size = sizeof info_; /* filled up to it (lazyneuron.h, "ABI") */
    check(lzn_model_get_info(raw, &info_), "lzn_model_get_info");
  }
  const lzn_model_info &info() const { return info_; }
  const lzn_model *get() const { return handle_.get(); }

 private:
  std::unique_ptr<lzn_model, ModelDeleter> handle_;
  lzn_model_info info_{};
};

// One sequence (KV cache + statistics); one thread at a time.
class Context {
 public:
  Context(const Model &model, const lzn_context_params &params) : info_(model.info()) {
    lzn_context *raw = nullptr;
    check(lzn_context_create(model.get(), &params, &raw), "lzn_context_create");
    handle_.reset(raw);
  }

  // Appends tokens and returns the logits of the last one.
  std::vector<float> forward(const std::vector<int32_t> &tokens) {
    std::vector<float> logits(static_cast<size_t>(info_.vocab_size));
    check(lzn_forward(handle_.get(), tokens.data(), static_cast<int>(tokens.size()), logits.data(),
                      LZN_LOGITS_LAST),
          "lzn_forward");
    return logits;
  }

  std::vector<lzn_layer_stats> stats() const {
    std::vector<lzn_layer_stats> out(static_cast<size_t>(info_.n_layers));
    out[0].struct_size = sizeof(lzn_layer_stats); /* each element's size */
    check(lzn_context_stats(handle_.get(), out.data(), info_.n_layers), "lzn_context_stats");
    return out;
  }

 private:
  lzn_model_info info_;
  std::unique_ptr<lzn_context, ContextDeleter> handle_;
};

}  // namespace lzn

namespace {

void usage(std::FILE *to, const char *argv0) {
  std::fprintf(to,
               "usage: %s [--mode sparse|dense|auto] [--threads N] MODEL_DIR [TOKEN_ID...]\n"
               "  Runs the token ids (default: 2 5 7 11 3) and prints the top-5 next tokens\n"
               "  and the per-layer MLP sparsity statistics.\n",
               argv0);
}

// A whole decimal string in [lo, hi], or throws std::invalid_argument.
long parse_long(const std::string &text, long lo, long hi) {
  size_t used = 0;
  long v = 0;
  try {
    v = std::stol(text, &used, 10);
  } catch (const std::exception &) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < lo || v > hi)
    throw std::invalid_argument("'" + text + "' is not a number in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "]");
  return v;
}

lzn_mlp_mode parse_mode(const std::string &text) {
  if (text == "sparse") return LZN_MLP_SPARSE;
  if (text == "dense") return LZN_MLP_DENSE;
  if (text == "auto") return LZN_MLP_AUTO;
  throw std::invalid_argument("--mode must be sparse, dense or auto, not '" + text + "'");
}

int run(int argc, char **argv) {
  lzn_context_params params = lzn_context_default_params();
  std::string mode_name = "auto", model_dir;
  std::vector<int32_t> prompt;
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(stdout, argv[0]);
      return 0;
    }
    if (arg == "--mode" || arg == "--threads") {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      const std::string value = argv[++i];
      if (arg == "--mode") {
        params.mlp_mode = parse_mode(value);
        mode_name = value;
      } else {
        params.n_threads = static_cast<int>(parse_long(value, 1, 1024));
      }
    } else if (model_dir.empty()) {
      model_dir = arg;
    } else {  // the library checks the vocabulary range
      prompt.push_back(static_cast<int32_t>(parse_long(arg, INT32_MIN, INT32_MAX)));
    }
  }
  if (model_dir.empty()) {
    usage(stderr, argv[0]);
    return 1;
  }
  if (prompt.empty()) prompt = {2, 5, 7, 11, 3};

  const lzn::Model model(model_dir);
  const lzn_model_info &info = model.info();
  lzn::Context ctx(model, params);
  const std::vector<float> logits = ctx.forward(prompt);
  const std::vector<lzn_layer_stats> stats = ctx.stats();

  const char *isa = lzn_isa_name();
  std::printf("lazyneuron %s (C++), isa %s\n", lzn_version_string(), isa ? isa : "(none)");
  std::printf("model %s: %d layers, d_model %d, d_ff %d, vocab %d\n", model_dir.c_str(),
              info.n_layers, info.d_model, info.d_ff, info.vocab_size);
  std::printf("prompt: %zu tokens, mode %s, %d thread%s\n", prompt.size(), mode_name.c_str(),
              params.n_threads, params.n_threads == 1 ? "" : "s");

  std::vector<int> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min<size_t>(5, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](int a, int b) {
                      const float la = logits[static_cast<size_t>(a)];
                      const float lb = logits[static_cast<size_t>(b)];
                      return la > lb || (la == lb && a < b);
                    });
  std::printf("\ntop-%zu next tokens:\n  rank  token      logit\n", k);
  for (size_t r = 0; r < k; r++)
    std::printf("  %4zu  %5d  %9.4f\n", r + 1, order[r],
                static_cast<double>(logits[static_cast<size_t>(order[r])]));
  std::printf("next token: %d\n", order[0]);

  std::printf("\nlayer  tokens  active  never_fired  flops_saved\n");
  for (size_t l = 0; l < stats.size(); l++) {
    const lzn_layer_stats &st = stats[l];
    const double saved = st.flops_dense > 0 ? 1.0 - st.flops_executed / st.flops_dense : 0.0;
    std::printf("%5zu  %6lld  %5.1f%%  %5lld/%-5d  %10.1f%%\n", l,
                static_cast<long long>(st.tokens), 100.0 * st.active_fraction,
                static_cast<long long>(st.never_fired), info.d_ff, 100.0 * saved);
  }
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  try {
    return run(argc, argv);
  } catch (const lzn::Error &e) {
    std::fprintf(stderr, "simple-cpp: %s\n", e.what());
  } catch (const std::exception &e) {
    std::fprintf(stderr, "simple-cpp: %s\n", e.what());
  }
  return 1;
}
