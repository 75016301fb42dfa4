# lazyneuron: plain GNU Makefile. `make help` lists the targets.
#
# Only the files in kernels/<isa>/ get ISA flags, per folder; the rest is
# built for baseline x86-64 so the library runs anywhere and picks kernels
# at run time (lib/cpu/dispatch.c).

# Builds run in parallel on every core unless -j was given: the rules are
# parallel-safe (each object has its own rule; generated headers are
# prerequisites), and the test phases run one after another (below).
ifeq ($(filter -j%,$(MAKEFLAGS)),)
NPROC := $(shell nproc 2>/dev/null || echo 1)
MAKEFLAGS += -j$(NPROC)
endif

PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR    ?=
BUILD      ?= build

CC     ?= cc
CXX    ?= c++
PYTHON ?= /usr/bin/python3

VERSION_MAJOR := $(shell sed -n 's/^\#define LZN_VERSION_MAJOR \([0-9]*\)/\1/p' include/lazyneuron.h)
VERSION_MINOR := $(shell sed -n 's/^\#define LZN_VERSION_MINOR \([0-9]*\)/\1/p' include/lazyneuron.h)
VERSION_PATCH := $(shell sed -n 's/^\#define LZN_VERSION_PATCH \([0-9]*\)/\1/p' include/lazyneuron.h)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
SONAME  := liblazyneuron.so.$(VERSION_MAJOR)

WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
            -Wformat=2 -Wundef -Wpointer-arith
WERROR   ?=
OPT      ?= -O2 -g
SANITIZE ?=
OPENMP   ?= -fopenmp
OPENMP_LIBS ?= -fopenmp
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) $(WARNINGS) $(WERROR) $(SANITIZE) $(OPENMP) -Iinclude $(CFLAGS)
# Private headers are named from lib/ or the top: "core/errors.h", "kernels/kernels.h".
PRIVATE_INC = -Ilib -I. -I$(BUILD)/gen
LIB_CFLAGS = $(CFLAGS_ALL) -fPIC -fvisibility=hidden -DLZN_BUILDING_LIBRARY
# libxsmm: Debian ships it static only (libxsmm-dev), linked into the library.
XSMM_LIBS = -lxsmm -lxsmmnoblas -lpthread -lrt -ldl
LIB_LDLIBS = -ldnnl -ljansson $(XSMM_LIBS) $(OPENMP_LIBS) -lm -lpthread
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -lpthread)

# ISA flags per kernel folder (BLIS's CKVECFLAGS), each probed so that an
# old compiler still builds the rest. kernels/<isa>/*.c get that folder's
# flags; nothing else gets any. kernels/ref/ is the portable reference.
FLAGS_avx2       := -mavx2 -mfma -mf16c
FLAGS_avxvnni    := $(FLAGS_avx2) -mavxvnni
FLAGS_avx512     := $(FLAGS_avx2) -mavx512f -mavx512bw -mavx512vl -mavx512dq
FLAGS_avx512bf16 := $(FLAGS_avx512) -mavx512bf16
FLAGS_avx512vnni := $(FLAGS_avx512) -mavx512vnni
ISA_FOLDERS := avx2 avxvnni avx512 avx512bf16 avx512vnni
probe = $(shell echo 'int main(void){return 0;}' | $(CC) $(1) -x c -c -o /dev/null - 2>/dev/null && echo yes)
BUILT_ISAS := $(foreach i,$(ISA_FOLDERS),$(if $(call probe,$(FLAGS_$(i))),$(i)))

LIB_SRCS    := $(wildcard lib/*/*.c)
KERNEL_SRCS := $(wildcard kernels/ref/*.c) $(foreach i,$(BUILT_ISAS),$(wildcard kernels/$(i)/*.c))
# build/gen/kernel_files.h: LZN_KERNEL_FILE(ISA, folder, part) per kernel
# file, read by lib/cpu/dispatch.c, rewritten only when the list changes.
kernel_isa  = $(word 2,$(subst /, ,$(1)))
kernel_line = LZN_KERNEL_FILE($(if $(filter ref,$(call kernel_isa,$(1))),SCALAR,$(shell echo $(call kernel_isa,$(1)) | tr a-z A-Z)),$(call kernel_isa,$(1)),$(basename $(notdir $(1))))
KERNEL_LIST := $(BUILD)/gen/kernel_files.h
OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS) $(KERNEL_SRCS))
DEPS := $(OBJS:.o=.d)

SHARED := $(BUILD)/liblazyneuron.so.$(VERSION)
STATIC := $(BUILD)/liblazyneuron.a
BENCH  := $(BUILD)/lzn-bench
TEST_SRCS := $(wildcard tests/test_*.c)
TESTS     := $(patsubst tests/%.c,$(BUILD)/%,$(TEST_SRCS))
FUZZ_SECONDS   ?= 60
FUZZ_HARNESSES := fuzz_safetensors fuzz_config fuzz_index fuzz_model fuzz_gguf fuzz_gguf_model fuzz_request fuzz_chat
FUZZ_REPLAYS   := $(patsubst %,$(BUILD)/replay_%,$(FUZZ_HARNESSES))
CLI       := $(BUILD)/lzn-run
# lzn-server: the OpenAI-compatible HTTP server (cli/server/, libmicrohttpd).
SERVER      := $(BUILD)/lzn-server
SERVER_SCHED_SRCS := $(wildcard cli/server/scheduler.* cli/common/reply_text.* cli/server/slot_file.*)
PROFILE   := $(BUILD)/lzn-profile
QUANTIZE  := $(BUILD)/lzn-quantize
EXAMPLES  := $(patsubst examples/%.c,$(BUILD)/%,$(wildcard examples/*.c)) \
             $(patsubst examples/%.cpp,$(BUILD)/%-cpp,$(wildcard examples/*.cpp))

.PHONY: FORCE all lib deps test test-isa test-exports test-abi test-python test-install test-readme print-static-libs \
        test-server server-soak bench-serve test-fuzz-replay bench demo install uninstall asan ubsan tsan \
        valgrind valgrind-predictor fuzz clean help

all: lib $(BENCH) $(EXAMPLES) $(CLI) $(PROFILE) $(QUANTIZE) $(SERVER)

help:
	@echo "targets: all lib deps test test-server server-soak bench demo install uninstall asan ubsan tsan valgrind fuzz clean"
	@echo "vars:    PREFIX DESTDIR LIBDIR BUILD CC WERROR=-Werror SANITIZE=... FUZZ_SECONDS=N"

lib: $(SHARED) $(STATIC)

# ------------------------------------------------------------------ deps
deps:
	@sh tools/deps.sh

# ----------------------------------------------------------------- build
$(foreach i,$(ISA_FOLDERS),$(eval $(BUILD)/obj/kernels/$(i)/%.o: CFLAGS_EXTRA = $(FLAGS_$(i))))

$(KERNEL_LIST): FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' $(foreach f,$(KERNEL_SRCS),'$(call kernel_line,$(f))') > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/lib/cpu/dispatch.o: $(KERNEL_LIST)
FORCE:

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) $(PRIVATE_INC) $(CFLAGS_EXTRA) -MMD -MP -c $< -o $@

# lib/lazyneuron.map: the exported symbols and their ELF versions (the ABI
# promise of lazyneuron.h: programs built against 0.2 keep working).
$(SHARED): $(OBJS) lib/lazyneuron.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined -Wl,--version-script=lib/lazyneuron.map \
	  $(SANITIZE) -o $@ $(OBJS) $(LIB_LDLIBS) $(LDFLAGS)
	ln -sf liblazyneuron.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/liblazyneuron.so

# The soname link is made with the library; this rule lets targets name it.
$(BUILD)/$(SONAME): $(SHARED)

$(STATIC): $(OBJS)
	@rm -f $@
	$(AR) rcs $@ $(OBJS)

# Tests, benchmark and examples link the static library: the tests reach
# internal functions (kernels, dense wrapper) that the shared one hides.
$(BENCH): $(wildcard bench/*.c) $(wildcard bench/*.h) $(STATIC)
	$(CC) $(CFLAGS_ALL) $(PRIVATE_INC) -o $@ $(filter %.c,$^) $(STATIC) $(LIB_LDLIBS) $(LDFLAGS)

# The synthetic-model builder is test and benchmark code, not the library's.
$(BUILD)/test_%: tests/test_%.c tests/testutil.h tests/kernel_testutil.h tests/testfiles.h tests/reference.h bench/synthetic.c bench/synthetic.h $(STATIC)
	$(CC) $(CFLAGS_ALL) $(PRIVATE_INC) -Ibench -o $@ $< bench/synthetic.c $(STATIC) $(CHECK_LIBS) $(LIB_LDLIBS) $(LDFLAGS)

# lzn-run, the generation CLI, installed with the library.
$(CLI): cli/lzn_run.c cli/common/reply_text.c cli/common/reply_text.h cli/weight_names.h include/lazyneuron.h $(STATIC)
	$(CC) $(CFLAGS_ALL) -o $@ cli/lzn_run.c cli/common/reply_text.c $(STATIC) $(LIB_LDLIBS) $(LDFLAGS)

# lzn-quantize: a GGUF model rewritten in another weight type (lzn_model_quantize).
$(QUANTIZE): cli/lzn_quantize.c cli/weight_names.h include/lazyneuron.h $(STATIC)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(STATIC) $(LIB_LDLIBS) $(LDFLAGS)

# lzn-profile, the sparsity profiler; its plots come from tools/plot/plot_profile.py.
$(PROFILE): cli/lzn_profile.c include/lazyneuron.h $(STATIC)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(STATIC) $(LIB_LDLIBS) $(LDFLAGS)

# lzn-server, the OpenAI-compatible HTTP server (cli/server/), installed with the library.
SERVER_SRCS := $(wildcard cli/server/*.c) cli/common/reply_text.c
SERVER_LIBS := $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)
$(SERVER): $(SERVER_SRCS) $(wildcard cli/server/*.h cli/common/*.h) include/lazyneuron.h $(STATIC)
	$(CC) $(CFLAGS_ALL) -o $@ $(SERVER_SRCS) $(STATIC) $(SERVER_LIBS) $(LIB_LDLIBS) $(LDFLAGS)

# What the library alone answers, for tests/server/test_http.py.
$(BUILD)/lzn-server-reference: tests/server/reference.c include/lazyneuron.h $(STATIC)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(STATIC) $(LIB_LDLIBS) $(LDFLAGS)

$(BUILD)/lzn-isa-list: tests/isa_list.c $(STATIC)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(STATIC) $(LIB_LDLIBS) $(LDFLAGS)

$(BUILD)/%: examples/%.c $(STATIC)
	$(CC) $(CFLAGS_ALL) -o $@ $< $(STATIC) $(LIB_LDLIBS) $(LDFLAGS)
# examples/server.c and tests/test_server.c #include lzn-server's scheduler.
$(BUILD)/server $(BUILD)/test_server: $(SERVER_SCHED_SRCS)

$(BUILD)/%-cpp: examples/%.cpp include/lazyneuron.h $(STATIC)
	$(CXX) -std=c++17 $(OPT) -Wall -Wextra $(WERROR) $(SANITIZE) -Iinclude -o $@ $< $(STATIC) $(LIB_LDLIBS) $(LDFLAGS)

-include $(DEPS)

# ------------------------------------------------------------------ test
# Every suite runs once per ISA this machine supports (LZN_ISA forces it;
# the kernel suites once per prefetch level too),
# then the export check, a 0.2 client, the Python binding and an install
# into a temporary prefix used through pkg-config. Everything is built first
# (in parallel), then the phases run one at a time, so their output reads in
# order and timings inside them are not disturbed by each other.
TEST_BUILDS = $(TESTS) $(FUZZ_REPLAYS) $(BUILD)/lzn-isa-list $(SHARED) $(CLI) $(PROFILE) $(QUANTIZE) $(EXAMPLES) $(BENCH)
test: deps
	@$(MAKE) --no-print-directory $(TEST_BUILDS)
	@$(MAKE) --no-print-directory -j1 test-isa test-exports test-abi test-python test-install test-readme \
	  test-server

# The kernel suites run at both prefetch levels (kernels.h: each row and
# attention kernel has two builds, one per level, and a CPU uses one);
# at scalar once, since the reference has no prefetches and one build.
KERNEL_SUITES = $(filter $(BUILD)/test_kernels% $(BUILD)/test_attention,$(TESTS))
test-isa: $(TESTS) $(FUZZ_REPLAYS) $(BUILD)/lzn-isa-list $(SHARED)
	@set -e; for isa in $$($(BUILD)/lzn-isa-list); do \
	  for t in $(filter-out $(KERNEL_SUITES),$(TESTS)); do \
	    echo "== LZN_ISA=$$isa $$t"; LZN_ISA=$$isa $$t; \
	  done; \
	  levels="l1 l2"; [ "$$isa" = scalar ] && levels=l1; \
	  for t in $(KERNEL_SUITES); do for level in $$levels; do \
	    echo "== LZN_ISA=$$isa LZN_PREFETCH=$$level $$t"; LZN_ISA=$$isa LZN_PREFETCH=$$level $$t; \
	  done; done; \
	  echo "== LZN_ISA=$$isa fuzz corpora and regressions"; \
	  for h in $(FUZZ_HARNESSES); do \
	    LZN_ISA=$$isa $(BUILD)/replay_$$h tests/fuzz/corpus/$$h tests/fuzz/regressions/$$h; \
	  done; \
	done

test-exports: $(SHARED)
	@sh tests/check_exports.sh $(SHARED)

# A program built against the 0.2 header runs against this library.
test-abi: $(BUILD)/$(SONAME)
	@CC="$(CC)" sh tests/abi/run.sh $(BUILD)

test-python: $(BUILD)/$(SONAME) $(CLI) $(PROFILE) $(QUANTIZE)
	LAZYNEURON_LIB=$(abspath $(BUILD)/$(SONAME)) $(PYTHON) -m pytest -q python/tests tools/tests

test-install:
	@sh tests/test_install.sh

# What a program linking the static library needs after it (tests/test_readme.sh).
print-static-libs:
	@echo $(LIB_LDLIBS)

# The README's C program, Python example and commands run as written.
test-readme: all
	@BUILD=$(BUILD) sh tests/test_readme.sh

# lzn-server over a real socket with curl and the OpenAI client for Node
# (tests/server/test_http.py; about a minute). LZN_SERVER_SOAK=SECONDS adds
# a soak; the sanitizer targets run one against their own build.
SERVER_SOAK ?= 0
test-server: $(SERVER) $(BUILD)/lzn-server-reference $(BENCH) $(BUILD)/lzn-isa-list
	LZN_SERVER=$(abspath $(SERVER)) LZN_SERVER_REFERENCE=$(abspath $(BUILD)/lzn-server-reference) LZN_BENCH=$(abspath $(BENCH)) \
	  LZN_SERVER_SOAK=$(SERVER_SOAK) $(PYTHON) -m pytest -q tests/server

# ------------------------------------------------------------------ fuzz
# libFuzzer harnesses (clang, ASan + UBSan): tests/fuzz/README.md. Every test
# run replays their corpora and regressions through a plain driver, so each
# crash ever found stays fixed under every ISA and sanitizer build.
fuzz:
	@sh tools/deps.sh clang libclang-rt-14-dev
	@set -e; for h in $(FUZZ_HARNESSES); do BUILD=build/fuzz sh tests/fuzz/run.sh $$h $(FUZZ_SECONDS); done

# fuzz_request #includes lzn-server's request parser.
$(BUILD)/replay_fuzz_request: cli/server/request.c cli/server/request.h cli/server/scheduler.h
$(BUILD)/replay_fuzz_%: tests/fuzz/replay.c tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h tests/fuzz/fuzz_forward.h $(STATIC)
	$(CC) $(CFLAGS_ALL) $(PRIVATE_INC) -Itests/fuzz -o $@ tests/fuzz/replay.c tests/fuzz/fuzz_$*.c $(STATIC) $(LIB_LDLIBS) $(LDFLAGS)

# ----------------------------------------------------------------- bench
bench: deps
	@$(MAKE) --no-print-directory $(BENCH)
	$(BENCH) kernels

# The trained byte-level model in models/tiny-opt continues a fixed prompt,
# sparse and dense, and shows what the sparse MLP saved.
DEMO_PROMPT ?= The meaning of life is
# Then lzn-run (the CLI that `make install` installs) takes the same prompt as text.
demo: deps
	@$(MAKE) --no-print-directory $(BUILD)/generate $(CLI) $(PROFILE) $(QUANTIZE)
	$(BUILD)/generate --tokens 96 --temperature 0.8 --seed 4 models/tiny-opt "$(DEMO_PROMPT)"
	@echo; echo "== lzn-run -m models/tiny-opt -p \"$(DEMO_PROMPT)\" -n 96 --seed 4"
	$(CLI) -m models/tiny-opt -p "$(DEMO_PROMPT)" -n 96 --seed 4 --mode sparse
	@echo; echo "== lzn-run -m models/tiny-llama -p \"$(DEMO_PROMPT)\" -n 96 --seed 4  (LLaMA, gated ReLU MLP)"
	$(CLI) -m models/tiny-llama -p "$(DEMO_PROMPT)" -n 96 --seed 4 --mode sparse

# --------------------------------------------------------------- install
# Paths under PREFIX are written as ${prefix}/... so pkg-config can relocate.
PC_LIBDIR     = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))
# What a static link needs: the library's own link line, with the compiler's
# OpenMP flag spelled as the runtime it links (gcc's -fopenmp is -lgomp).
PC_LIBS_PRIVATE = $(patsubst -fopenmp,-lgomp,$(LIB_LDLIBS))
# lzn-convert is tools/convert/lzn_convert.py (with the modules it imports) under
# share/lazyneuron/tools, run by a two-line wrapper with $(PYTHON) -B (no
# __pycache__ written there, so uninstall leaves nothing).
CONVERT_TOOLS := tools/convert/lzn_convert.py tools/convert/hf_tokenizer.py tools/convert/gguf_write.py
install: lib $(CLI) $(PROFILE) $(QUANTIZE) $(SERVER)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR) \
	           $(DESTDIR)$(PREFIX)/share/lazyneuron/tools
	install -m 755 $(CLI) $(DESTDIR)$(BINDIR)/lzn-run
	install -m 755 $(PROFILE) $(DESTDIR)$(BINDIR)/lzn-profile
	install -m 755 $(QUANTIZE) $(DESTDIR)$(BINDIR)/lzn-quantize
	install -m 755 $(SERVER) $(DESTDIR)$(BINDIR)/lzn-server
	install -m 644 tools/plot/plot_profile.py $(DESTDIR)$(PREFIX)/share/lazyneuron/tools/plot_profile.py
	install -m 644 $(CONVERT_TOOLS) $(DESTDIR)$(PREFIX)/share/lazyneuron/tools/
	printf '#!/bin/sh\n# lzn-convert: a Hugging Face folder -> GGUF (lazyneuron)\nexec %s -B "%s" "$$@"\n' \
	  '$(PYTHON)' '$(PREFIX)/share/lazyneuron/tools/lzn_convert.py' > $(DESTDIR)$(BINDIR)/lzn-convert
	chmod 755 $(DESTDIR)$(BINDIR)/lzn-convert
	install -m 644 include/lazyneuron.h $(DESTDIR)$(INCLUDEDIR)/lazyneuron.h
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/liblazyneuron.so.$(VERSION)
	ln -sf liblazyneuron.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/liblazyneuron.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/liblazyneuron.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(PC_LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    -e 's|@LIBS_PRIVATE@|$(PC_LIBS_PRIVATE)|' \
	    pkgconfig/lazyneuron.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/lazyneuron.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/lzn-run $(DESTDIR)$(BINDIR)/lzn-profile $(DESTDIR)$(BINDIR)/lzn-server \
	      $(DESTDIR)$(BINDIR)/lzn-quantize $(DESTDIR)$(BINDIR)/lzn-convert \
	      $(DESTDIR)$(PREFIX)/share/lazyneuron/tools/plot_profile.py \
	      $(patsubst tools/convert/%,$(DESTDIR)$(PREFIX)/share/lazyneuron/tools/%,$(CONVERT_TOOLS))
	rm -f $(DESTDIR)$(INCLUDEDIR)/lazyneuron.h \
	      $(DESTDIR)$(LIBDIR)/liblazyneuron.so.$(VERSION) \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/liblazyneuron.so \
	      $(DESTDIR)$(LIBDIR)/liblazyneuron.a $(DESTDIR)$(PKGCONFIGDIR)/lazyneuron.pc

# ------------------------------------------------------------ sanitizers
# Separate build trees so sanitizer objects never mix with the normal ones.
# AddressSanitizer with UndefinedBehaviorSanitizer, no recovery: the first
# report fails the run. CK_FORK=no: the tests run in one process, so
# LeakSanitizer sees every leak.
asan: deps
	@CK_FORK=no $(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all" test-isa
	@$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all" server-soak
	@$(MAKE) --no-print-directory valgrind-predictor

# The predictor suite (PowerInfer files, odd ranks: issue 24) under
# valgrind's memcheck too, which also sees reads of uninitialised memory
# that ASan does not. AVX2 at most: valgrind 3.19 has no AVX-512.
valgrind-predictor: $(BUILD)/test_predictor_llama
	CK_FORK=no LZN_ISA=avx2 valgrind -q --error-exitcode=1 --leak-check=full \
	  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	  --suppressions=tests/valgrind.supp $(BUILD)/test_predictor_llama

ubsan: deps
	@$(MAKE) --no-print-directory BUILD=build/ubsan OPT="-O1 -g" \
	  SANITIZE="-fsanitize=undefined -fno-sanitize-recover=all" test-isa

# ThreadSanitizer cannot see libgomp's barriers (Debian's libgomp is not
# instrumented), so every OpenMP region would report false races. The TSan
# build compiles the pragmas out and checks what TSan can: application
# threads sharing one model, each with its own context (tests/test_threads.c).
tsan: deps
	@TSAN_OPTIONS="halt_on_error=1 $(TSAN_OPTIONS)" $(MAKE) --no-print-directory BUILD=build/tsan \
	  OPT="-O1 -g" SANITIZE="-fsanitize=thread" OPENMP="-Wno-unknown-pragmas" OPENMP_LIBS="-lgomp" \
	  test-isa
	@TSAN_OPTIONS="halt_on_error=1 $(TSAN_OPTIONS)" $(MAKE) --no-print-directory BUILD=build/tsan \
	  OPT="-O1 -g" SANITIZE="-fsanitize=thread" OPENMP="-Wno-unknown-pragmas" OPENMP_LIBS="-lgomp" \
	  server-soak

# The sanitized lzn-server under the HTTP suite plus a soak of
# SERVER_SOAK_SECONDS (default 120): every crash, leak (LeakSanitizer makes
# the exit code non-zero, which the suite checks) or race fails it.
SERVER_SOAK_SECONDS ?= 120
server-soak: $(SERVER) $(BUILD)/lzn-server-reference $(BENCH) $(BUILD)/lzn-isa-list
	LZN_SERVER=$(abspath $(SERVER)) LZN_SERVER_REFERENCE=$(abspath $(BUILD)/lzn-server-reference) LZN_BENCH=$(abspath $(BENCH)) \
	  LZN_SERVER_SOAK=$(SERVER_SOAK_SECONDS) LZN_SERVER_SLOW=10 $(PYTHON) -m pytest -q tests/server

# Valgrind's memcheck over every suite in one process (CK_FORK=no); any
# error or leak fails. Slow: a few minutes.
valgrind: deps
	@$(MAKE) --no-print-directory $(TESTS) $(BUILD)/lzn-isa-list
	@set -e; for t in $(TESTS); do echo "== valgrind $$t"; \
	  CK_FORK=no valgrind -q --error-exitcode=1 --leak-check=full \
	    --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
	    --suppressions=tests/valgrind.supp $$t; done

# The default tree holds the sanitizer and fuzz trees (build/asan, ...).
clean:
	rm -rf $(BUILD)
