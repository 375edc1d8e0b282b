# rpt — the only build. `make` builds everything; `make test`, `make bench`, `make run`,
# `make gpu-bundle`, `make gpu-check`, `make clean`. CUDA=0 builds a CPU-only binary;
# CUDA_ARCH picks the GPU architectures (default sm_80 and sm_90). MPI=0 builds a
# single-process binary (MPI is on when mpicxx is found); NCCL=0 leaves out the NCCL
# backend (on with CUDA + MPI when nccl.h is in the CUDA toolkit). PORTABLE=1 builds host
# code for any x86-64-v3 (AVX2) machine with cudart linked statically and an $ORIGIN
# rpath: the GPU bundle's build. Plain `make` uses every core (override with -jN).

ifeq ($(filter -j% --jobserver%,$(MAKEFLAGS)),)
  MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

CXX       ?= g++
NVCC      ?= nvcc
BUILD     ?= build
CUDA      ?= $(if $(shell command -v $(NVCC) 2>/dev/null),1,0)
CUDA_ARCH ?= 80,90
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
PORTABLE  ?= 0
# The CPU backend is the hot path of the demo: let the compiler use this machine's SIMD.
# The bundle runs on another machine: AVX2 and FMA, which every x86 GPU host has.
ifeq ($(PORTABLE),1)
  ARCH_FLAGS ?= -march=x86-64-v3 -mtune=generic
else
  ARCH_FLAGS ?= -march=native
endif

# Flags that avoid a known miscompilation of this compiler for these target flags
# (tools/compiler-probe.sh builds and runs a probe once per make): GCC 12.2's SLP
# vectorizer on AVX-512 targets.
ifndef COMPILER_WORKAROUNDS
  COMPILER_WORKAROUNDS := $(shell bash tools/compiler-probe.sh '$(CXX)' '$(ARCH_FLAGS)')
endif

MPI       ?= $(if $(shell command -v mpicxx 2>/dev/null),1,0)
NCCL      ?= $(if $(and $(filter 1,$(CUDA)),$(filter 1,$(MPI)),$(wildcard $(CUDA_HOME)/include/nccl.h)),1,0)

comma := ,

# Line tables only: file:line in backtraces and sanitizer reports at a fifth less
# compile time than full debug info (DEBUG_FLAGS=-g for a debugger's variables).
DEBUG_FLAGS ?= -g1
CXXFLAGS ?= -O3 $(ARCH_FLAGS) $(DEBUG_FLAGS)
CXXFLAGS += $(COMPILER_WORKAROUNDS) -std=c++17 -Wall -Wextra -fopenmp -I. -MMD -MP
LDLIBS   += -fopenmp -lfmt -lpcre2-8 -lutf8proc -lpthread

ifeq ($(MPI),1)
  # Open MPI's wrapper knows its include and library paths; the compiler stays $(CXX).
  # OMPI_SKIP_MPICXX: the deprecated C++ bindings' header does not build -Wextra clean.
  CXXFLAGS += -DRPT_WITH_MPI -DOMPI_SKIP_MPICXX $(shell mpicxx --showme:compile)
  LDLIBS   += $(shell mpicxx --showme:link)
endif

LIB_DIRS  := kernels kernels/cpu kernels/ref model rl comm
LIB_SRCS  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.cpp))
CLI_SRCS  := $(wildcard tools/cli/*.cpp)
TEST_SRCS := $(wildcard tests/*.cpp)
BENCH_SRCS:= $(wildcard bench/*.cpp)
CU_SRCS   := $(wildcard kernels/cuda/*.cu)
# The CUDA objects depend only on nvcc's flags (no host flags reach them), so the GPU
# bundle's build reuses this build's when the architectures match (CU_BUILD, below).
CU_BUILD  ?= $(BUILD)

ifeq ($(CUDA),1)
  CUDA_GENCODE := $(foreach a,$(subst $(comma), ,$(CUDA_ARCH)),-gencode arch=compute_$(a),code=sm_$(a))
  NVCCFLAGS ?= -O3 -lineinfo
  NVCCFLAGS += -std=c++17 $(CUDA_GENCODE) -I. -Xcompiler -Wall,-Wextra -Werror all-warnings -MMD -MP -Xptxas -v
  CXXFLAGS  += -DRPT_WITH_CUDA -I$(CUDA_HOME)/include
  ifeq ($(PORTABLE),1)
    # cudart inside the binary; cuBLAS is found on the GPU machine (tools/gpu-check.sh).
    LDLIBS  += -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lcublasLt -lcublas
  else
    LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublasLt -lcublas
  endif
  CU_OBJS   := $(CU_SRCS:%.cu=$(CU_BUILD)/%.o)
  ifeq ($(NCCL),1)
    CXXFLAGS += -DRPT_WITH_NCCL
    LDLIBS   += -lnccl
  endif
endif

ifeq ($(PORTABLE),1)
  # The bundle's libraries sit in lib/ beside bin/.
  LDLIBS += -Wl,-rpath,'$$ORIGIN/../lib'
endif

LIB_OBJS   := $(LIB_SRCS:%.cpp=$(BUILD)/%.o) $(CU_OBJS)
CLI_OBJS   := $(CLI_SRCS:%.cpp=$(BUILD)/%.o)
TEST_OBJS  := $(TEST_SRCS:%.cpp=$(BUILD)/%.o)
BENCH_OBJS := $(BENCH_SRCS:%.cpp=$(BUILD)/%.o)
LIB        := $(BUILD)/librpt.a
# Present when every CUDA kernel of this build compiled without register spills.
PTXAS_STAMP:= $(if $(CU_OBJS),$(BUILD)/.ptxas-ok)
# Present when the kernels that must use tensor cores have HMMA instructions for every
# architecture of the build (tools/sass-check.sh, tools/tensor-core-kernels.txt).
SASS_STAMP := $(if $(CU_OBJS),$(BUILD)/.sass-ok)
SASS_PROBE := $(CU_BUILD)/tools/sass/hmma_probe.o
DEPS_STAMP := $(BUILD)/.deps-installed
ST_DIFF    := $(BUILD)/rpt_st_diff

# Make re-reads this Makefile after (re)making the deps stamp, so the detection of mpicxx
# above sees packages the deps script has just installed on a fresh machine.
ifeq ($(filter clean,$(MAKECMDGOALS)),)
-include $(DEPS_STAMP)
endif

# Objects depend on the build configuration: flipping CUDA, MPI or NCCL rebuilds them.
BUILD_CONFIG := CUDA=$(CUDA) CUDA_ARCH=$(CUDA_ARCH) MPI=$(MPI) NCCL=$(NCCL) PORTABLE=$(PORTABLE) \
                WORKAROUNDS=$(COMPILER_WORKAROUNDS)
CONFIG_STAMP := $(BUILD)/.config
# The CUDA objects' own configuration: nvcc and its flags (the architectures among them).
CU_CONFIG       := $(NVCC) $(NVCCFLAGS)
CU_CONFIG_STAMP := $(CU_BUILD)/.cu-config
# (Not for `make sanitize` and `make fuzz` alone: they build in trees of their own.)
ifneq ($(if $(MAKECMDGOALS),$(filter-out sanitize% fuzz% run-fuzz%,$(MAKECMDGOALS)),all),)
ifneq ($(BUILD_CONFIG),$(shell cat $(CONFIG_STAMP) 2>/dev/null))
  $(shell mkdir -p $(BUILD) && echo '$(BUILD_CONFIG)' > $(CONFIG_STAMP))
endif
ifeq ($(CUDA),1)
ifneq ($(CU_CONFIG),$(shell cat $(CU_CONFIG_STAMP) 2>/dev/null))
  $(shell mkdir -p $(CU_BUILD) && echo '$(CU_CONFIG)' > $(CU_CONFIG_STAMP))
endif
endif
endif

.PHONY: all deps test bench run gpu-bundle gpu-check gpu-check-dry-run clean ptxas-check sass-check soak
all: $(BUILD)/rpt $(BUILD)/rpt_tests $(BUILD)/rpt_bench $(ST_DIFF) $(PTXAS_STAMP) $(SASS_STAMP)

# Installs the Debian packages the build needs (once per build tree; the script itself
# is idempotent and only installs what is missing).
deps: $(DEPS_STAMP)
$(DEPS_STAMP): tools/install-deps.sh
	@mkdir -p $(BUILD)
	bash tools/install-deps.sh
	@touch $@

$(BUILD)/%.o: %.cpp $(CONFIG_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# The prompt templates rl/templates/*.json, compiled into the binary as string constants.
TEMPLATE_JSON := $(sort $(wildcard rl/templates/*.json))
$(BUILD)/gen/template_files.inc: $(TEMPLATE_JSON) tools/embed-templates.sh
	@mkdir -p $(dir $@)
	sh tools/embed-templates.sh $(TEMPLATE_JSON) > $@.tmp && mv $@.tmp $@
$(BUILD)/rl/template_catalog.o: $(BUILD)/gen/template_files.inc
$(BUILD)/rl/template_catalog.o: CXXFLAGS += -I$(BUILD)/gen

# ptxas resource usage (registers, spills) of every kernel is kept next to the object.
$(CU_BUILD)/%.o: %.cu $(CU_CONFIG_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@ 2> $(@:.o=.ptxas.log) || { cat $(@:.o=.ptxas.log); exit 1; }
	@grep -v -E "^ptxas info|^ptxas (.*)?(Compiling|Function properties|Used|[0-9]+ bytes)" $(@:.o=.ptxas.log) || true

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/rpt: $(CLI_OBJS) $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/rpt_tests: $(TEST_OBJS) $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS) -lgtest -lgtest_main

$(BUILD)/rpt_bench: $(BENCH_OBJS) $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# Compares two safetensors files within a tolerance (the multi-rank tests).
$(ST_DIFF): $(BUILD)/tests/mpi/st_diff.o $(LIB)
	$(CXX) $(CXXFLAGS) $^ -o $@ $(LDLIBS)

# Unit tests, then the end-to-end checks (CLI errors, the quick demo), then the
# multi-rank checks under mpirun (skipped, saying so, in a build without MPI), then a
# short soak of resume (3 kills per command).
test: $(BUILD)/rpt_tests $(BUILD)/rpt $(ST_DIFF)
	$(BUILD)/rpt_tests
	bash tests/e2e/run_all.sh $(BUILD)/rpt
	bash tests/e2e/bad_input.sh $(BUILD)/rpt
	bash tests/mpi/run_mpi_tests.sh $(BUILD)
	bash tests/soak/soak.sh $(BUILD)/rpt 3
ifeq ($(CUDA),1)
	$(MAKE) --no-print-directory gpu-check-dry-run
endif

# Kills `rpt pretrain` and `rpt train` with SIGKILL at random moments (and during
# checkpoint writes), SOAK_KILLS times each, resuming every time: the result must be
# bit-identical to the uninterrupted run (tests/soak/soak.sh). SOAK_PRESET: tiny | small.
SOAK_KILLS  ?= 20
SOAK_PRESET ?= tiny
soak: $(BUILD)/rpt
	bash tests/soak/soak.sh $(BUILD)/rpt $(SOAK_KILLS) $(SOAK_PRESET)

bench: $(BUILD)/rpt_bench $(BUILD)/rpt
	bash bench/run_all.sh $(BUILD)

run: $(BUILD)/rpt
	$(BUILD)/rpt demo --out $(BUILD)/demo

# ---- the GPU bundle -----------------------------------------------------------------
# `make gpu-bundle` (no GPU needed): rpt, rpt_tests and rpt_bench built PORTABLE=1 for
# sm_80 + sm_90 with MPI=0, their non-CUDA shared libraries, the fixtures, the PyTorch
# peer, the ptxas reports and tools/gpu-check.sh, in one folder of at most 48 MiB that
# travels to a lent GPU machine (kernels/cuda/README.md has the one-call recipe).
GPU_BUNDLE       ?= $(BUILD)/gpu-bundle
GPU_BUNDLE_BUILD ?= $(BUILD)/gpu-bundle-obj
GPU_BUNDLE_ARCH  ?= 80,90
# The bundle's CUDA objects are this build's when it has CUDA for the same architectures
# (nvcc sees no host flags, so PORTABLE and MPI do not change them): a second nvcc pass
# over every kernel is the slowest part of a bundle build otherwise.
GPU_BUNDLE_CU_BUILD := $(if $(and $(filter 1,$(CUDA)),$(filter $(GPU_BUNDLE_ARCH),$(CUDA_ARCH))),$(BUILD),$(GPU_BUNDLE_BUILD))
gpu-bundle: | $(DEPS_STAMP)
	@command -v $(NVCC) >/dev/null || { echo "gpu-bundle: nvcc not found (the bundle needs the CUDA toolkit)"; exit 1; }
	$(MAKE) --no-print-directory BUILD=$(GPU_BUNDLE_BUILD) CU_BUILD=$(GPU_BUNDLE_CU_BUILD) \
	    DEPS_STAMP=$(abspath $(DEPS_STAMP)) CUDA=1 MPI=0 NCCL=0 PORTABLE=1 CUDA_ARCH=$(GPU_BUNDLE_ARCH) DEBUG_FLAGS= \
	    $(GPU_BUNDLE_BUILD)/rpt $(GPU_BUNDLE_BUILD)/rpt_tests $(GPU_BUNDLE_BUILD)/rpt_bench $(GPU_BUNDLE_BUILD)/.ptxas-ok \
	    $(GPU_BUNDLE_BUILD)/.sass-ok
	bash tools/gpu-bundle.sh $(GPU_BUNDLE_BUILD) $(GPU_BUNDLE) $(GPU_BUNDLE_CU_BUILD)

# Every GPU check in one call, on a machine with a GPU (results under build/gpu-check,
# or $$OUT when set).
gpu-check: gpu-bundle
	bash $(GPU_BUNDLE)/gpu-check.sh

# What `make test` runs on a machine without a GPU: the bundle builds, every binary in it
# starts with only its own libraries, and the check script runs with its GPU steps skipped.
gpu-check-dry-run: gpu-bundle
	bash $(GPU_BUNDLE)/gpu-check.sh --dry-run --out $(BUILD)/gpu-check-dry-run

# Fails when a CUDA kernel spills registers (reads the ptxas logs of the last build);
# part of every CUDA build, so a spill fails `make` where it is introduced.
ptxas-check: $(LIB)
	bash tools/ptxas-check.sh $(CU_BUILD)
$(BUILD)/.ptxas-ok: $(CU_OBJS) tools/ptxas-check.sh
	@bash tools/ptxas-check.sh $(CU_BUILD) > $(BUILD)/ptxas-check.txt || { cat $(BUILD)/ptxas-check.txt; exit 1; }
	@tail -n 1 $(BUILD)/ptxas-check.txt
	@touch $@

# Tensor cores, read from the objects: `cuobjdump -sass` of the kernels listed in
# tools/tensor-core-kernels.txt must show HMMA for each architecture of CUDA_ARCH (the
# per-kernel counts are kept in $(BUILD)/sass-check.txt). The WMMA probe is the check's
# positive control.
sass-check: $(CU_OBJS) $(SASS_PROBE)
	bash tools/sass-check.sh $(CU_BUILD) $(CUDA_ARCH)
$(BUILD)/.sass-ok: $(CU_OBJS) $(SASS_PROBE) tools/sass-check.sh tools/tensor-core-kernels.txt
	@bash tools/sass-check.sh $(CU_BUILD) $(CUDA_ARCH) > $(BUILD)/sass-check.txt || { cat $(BUILD)/sass-check.txt; exit 1; }
	@tail -n 1 $(BUILD)/sass-check.txt
	@touch $@

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BENCH_OBJS:.o=.d) $(BUILD)/tests/mpi/st_diff.d

# ---- fuzzing (libFuzzer) -----------------------------------------------------------
# `make fuzz` builds the fuzz targets in fuzz/ with clang (ASan + UBSan) and runs each
# for FUZZ_SECONDS (they run in parallel under make -j). Corpora and crash files go to
# $(BUILD)/fuzz/<target>/; committed fixtures and fuzz/seeds/ seed them, and the JSON
# readers get fuzz/json.dict. The parsers' sources are compiled with coverage into one
# archive (each parser lives in a file of its own, apart from the model and kernels).
FUZZ_CXX      ?= clang++
FUZZ_SECONDS  ?= 600
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CXXFLAGS := -std=c++17 -g -O1 -I. $(FUZZ_SAN)
FUZZ_TARGETS  := fuzz_safetensors fuzz_tokenizer_json fuzz_encode fuzz_config_json fuzz_corpus_jsonl \
                 fuzz_positions fuzz_template_json fuzz_trainer_state fuzz_safetensors_index
FUZZ_LIB_SRCS := model/flops.cpp model/safetensors.cpp model/file_io.cpp model/tokenizer.cpp model/pretokenizer.cpp \
                 model/byte_level.cpp model/added_tokens.cpp model/unicode_class.cpp model/config.cpp \
                 model/safetensors_index.cpp model/trainer_state.cpp rl/corpus.cpp rl/positions_file.cpp \
                 rl/templates.cpp
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.cpp=$(BUILD)/fuzz/obj/%.o)
FUZZ_LIB      := $(BUILD)/fuzz/librpt_fuzz.a
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/bin/%)
FUZZ_SEEDS_fuzz_safetensors       := tests/fixtures/hf/tied_gqa2_hd128/model.safetensors
FUZZ_SEEDS_fuzz_tokenizer_json    := $(wildcard tests/fixtures/hf_tokenizer*/tokenizer*.json)
FUZZ_SEEDS_fuzz_encode            := tests/fixtures/hf_tokenizer/cases.json
FUZZ_SEEDS_fuzz_config_json       := $(wildcard tests/fixtures/hf/*/config.json fuzz/seeds/config/*)
FUZZ_SEEDS_fuzz_corpus_jsonl      := $(wildcard fuzz/seeds/corpus/*)
FUZZ_SEEDS_fuzz_positions         := $(wildcard fuzz/seeds/positions/*)
FUZZ_SEEDS_fuzz_template_json     := $(wildcard fuzz/seeds/template/*)
FUZZ_SEEDS_fuzz_trainer_state     := $(wildcard fuzz/seeds/trainer_state/*)
FUZZ_SEEDS_fuzz_safetensors_index := $(wildcard fuzz/seeds/safetensors_index/*)
# Longest input per target: the encoder is slow per byte under ASan, so it gets shorter
# ones; the small JSON files need no more than a few KiB.
FUZZ_MAX_LEN_fuzz_safetensors       := 65536
FUZZ_MAX_LEN_fuzz_tokenizer_json    := 65536
FUZZ_MAX_LEN_fuzz_encode            := 4096
FUZZ_MAX_LEN_fuzz_config_json       := 4096
FUZZ_MAX_LEN_fuzz_corpus_jsonl      := 8192
FUZZ_MAX_LEN_fuzz_positions         := 4096
FUZZ_MAX_LEN_fuzz_template_json     := 4096
FUZZ_MAX_LEN_fuzz_trainer_state     := 4096
FUZZ_MAX_LEN_fuzz_safetensors_index := 8192
FUZZ_DICT_fuzz_tokenizer_json       := -dict=fuzz/json.dict
FUZZ_DICT_fuzz_config_json          := -dict=fuzz/json.dict
FUZZ_DICT_fuzz_corpus_jsonl         := -dict=fuzz/json.dict
FUZZ_DICT_fuzz_positions            := -dict=fuzz/json.dict
FUZZ_DICT_fuzz_template_json        := -dict=fuzz/json.dict
FUZZ_DICT_fuzz_trainer_state        := -dict=fuzz/json.dict
FUZZ_DICT_fuzz_safetensors_index    := -dict=fuzz/json.dict

.PHONY: fuzz fuzz-build $(FUZZ_TARGETS:%=run-%)
fuzz-build: $(FUZZ_BINS)
fuzz: $(FUZZ_TARGETS:%=run-%)
.SECONDARY: $(FUZZ_LIB_OBJS)

$(BUILD)/fuzz/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/bin/%: fuzz/%.cpp $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer $^ -o $@ -lfmt -lpcre2-8 -lutf8proc

# Seeds are copied under their path with '/' as '_' (several are called config.json).
$(FUZZ_TARGETS:%=run-%): run-%: $(BUILD)/fuzz/bin/%
	@mkdir -p $(BUILD)/fuzz/$*/corpus $(BUILD)/fuzz/$*/crashes
	@for f in $(FUZZ_SEEDS_$*); do cp -n $$f $(BUILD)/fuzz/$*/corpus/$$(echo $$f | tr / _); done
	$(BUILD)/fuzz/bin/$* -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN_$*) -timeout=10 -rss_limit_mb=4096 \
	    $(FUZZ_DICT_$*) -artifact_prefix=$(BUILD)/fuzz/$*/crashes/ -print_final_stats=1 $(BUILD)/fuzz/$*/corpus \
	    > $(BUILD)/fuzz/$*.log 2>&1; rc=$$?; tail -n 25 $(BUILD)/fuzz/$*.log; exit $$rc

-include $(FUZZ_LIB_OBJS:.o=.d)

# ---- sanitizers (ASan + UBSan) -----------------------------------------------------
# `make sanitize` builds the unit tests and the CLI with AddressSanitizer (with leak
# checking) and UBSan in $(SAN_BUILD) (CPU only, single process: MPI=0, CUDA=0), then
# runs every unit test and the end-to-end script with the sanitized binary. Any report
# aborts the process (so the e2e script sees a crash, not an ordinary error exit) and
# is also written to $(SAN_BUILD)/reports/, which must stay empty. The flags travel to
# the sub-make in the environment, where `CXXFLAGS ?=` picks them up and the rest of
# this Makefile appends to them.
SAN_BUILD    ?= $(BUILD)/sanitize
SAN_CXXFLAGS := -O1 -g1 $(ARCH_FLAGS) -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SAN_REPORTS  := $(SAN_BUILD)/reports
SAN_ENV      := ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1:log_path=$(abspath $(SAN_REPORTS))/asan \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:abort_on_error=1:log_path=$(abspath $(SAN_REPORTS))/ubsan \
                LSAN_OPTIONS=suppressions=$(abspath tools/lsan.supp):print_suppressions=0 OMP_NUM_THREADS=2

# Left out: the tests that assert speed (ASan makes code several times slower on
# purpose) and the three that train for hundreds of steps to compare or see learning
# (12 s, 9 s and the bf16 loss curve's 400 model steps at -O3; their code paths,
# training steps, rollouts and the bf16 emulation, run under ASan in the other tests and
# in the end-to-end script).
SAN_GTEST_FILTER := -SynthCorpus.IsFast:TokenizerTrain.FastEnough:Pretrain.TinyModelLearnsTheSyntheticCorpus:RptEndToEnd.RewardRisesOnADeterminedTask:ModelBf16.TinyTracksTheFp32LossCurveFor200Steps

.PHONY: sanitize sanitize-build
sanitize-build:
	CXXFLAGS='$(SAN_CXXFLAGS)' $(MAKE) BUILD=$(SAN_BUILD) CUDA=0 MPI=0 $(SAN_BUILD)/rpt $(SAN_BUILD)/rpt_tests

sanitize: sanitize-build
	@rm -rf $(SAN_REPORTS) && mkdir -p $(SAN_REPORTS)
	$(SAN_ENV) $(SAN_BUILD)/rpt_tests --gtest_filter='$(SAN_GTEST_FILTER)'
	$(SAN_ENV) E2E_SKIP_DEMO=1 bash tests/e2e/run_all.sh $(SAN_BUILD)/rpt
	@if [ -n "$$(ls -A $(SAN_REPORTS))" ]; then cat $(SAN_REPORTS)/*; echo "sanitize: reports above"; exit 1; fi
	@echo "sanitize: clean (ASan, LSan, UBSan)"
