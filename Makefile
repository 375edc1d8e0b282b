# rpt — the only build. `make` builds everything; `make test`, `make bench`, `make run`,
# `make gpu-check`, `make clean`. CUDA=0 builds a CPU-only binary; CUDA_ARCH picks the
# GPU architectures (default sm_80 and sm_90). MPI=0 builds a single-process binary (MPI
# is on when mpicxx is found); NCCL=0 leaves out the NCCL backend (on with CUDA + MPI
# when nccl.h is in the CUDA toolkit).

CXX       ?= g++
NVCC      ?= nvcc
BUILD     ?= build
CUDA      ?= $(if $(shell command -v $(NVCC) 2>/dev/null),1,0)
CUDA_ARCH ?= 80,90
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
# The CPU backend is the hot path of the demo: let the compiler use this machine's SIMD.
ARCH_FLAGS ?= -march=native

MPI       ?= $(if $(shell command -v mpicxx 2>/dev/null),1,0)
NCCL      ?= $(if $(and $(filter 1,$(CUDA)),$(filter 1,$(MPI)),$(wildcard $(CUDA_HOME)/include/nccl.h)),1,0)

comma := ,

CXXFLAGS ?= -O3 $(ARCH_FLAGS) -g
CXXFLAGS += -std=c++17 -Wall -Wextra -fopenmp -I. -MMD -MP
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

ifeq ($(CUDA),1)
  CUDA_GENCODE := $(foreach a,$(subst $(comma), ,$(CUDA_ARCH)),-gencode arch=compute_$(a),code=sm_$(a))
  NVCCFLAGS ?= -O3 -lineinfo
  NVCCFLAGS += -std=c++17 $(CUDA_GENCODE) -I. -Xcompiler -Wall,-Wextra -Werror all-warnings -MMD -MP -Xptxas -v
  CXXFLAGS  += -DRPT_WITH_CUDA -I$(CUDA_HOME)/include
  LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lcublasLt -lcublas
  CU_OBJS   := $(CU_SRCS:%.cu=$(BUILD)/%.o)
  ifeq ($(NCCL),1)
    CXXFLAGS += -DRPT_WITH_NCCL
    LDLIBS   += -lnccl
  endif
endif

LIB_OBJS   := $(LIB_SRCS:%.cpp=$(BUILD)/%.o) $(CU_OBJS)
CLI_OBJS   := $(CLI_SRCS:%.cpp=$(BUILD)/%.o)
TEST_OBJS  := $(TEST_SRCS:%.cpp=$(BUILD)/%.o)
BENCH_OBJS := $(BENCH_SRCS:%.cpp=$(BUILD)/%.o)
LIB        := $(BUILD)/librpt.a
DEPS_STAMP := $(BUILD)/.deps-installed
ST_DIFF    := $(BUILD)/rpt_st_diff

# Make re-reads this Makefile after (re)making the deps stamp, so the detection of mpicxx
# above sees packages the deps script has just installed on a fresh machine.
ifeq ($(filter clean,$(MAKECMDGOALS)),)
-include $(DEPS_STAMP)
endif

# Objects depend on the build configuration: flipping CUDA, MPI or NCCL rebuilds them.
BUILD_CONFIG := CUDA=$(CUDA) CUDA_ARCH=$(CUDA_ARCH) MPI=$(MPI) NCCL=$(NCCL)
CONFIG_STAMP := $(BUILD)/.config
ifneq ($(BUILD_CONFIG),$(shell cat $(CONFIG_STAMP) 2>/dev/null))
  $(shell mkdir -p $(BUILD) && echo '$(BUILD_CONFIG)' > $(CONFIG_STAMP))
endif

.PHONY: all deps test bench run gpu-check clean ptxas-check
all: $(BUILD)/rpt $(BUILD)/rpt_tests $(BUILD)/rpt_bench $(ST_DIFF)

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

# ptxas resource usage (registers, spills) of every kernel is kept next to the object.
$(BUILD)/%.o: %.cu $(CONFIG_STAMP) | $(DEPS_STAMP)
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
# multi-rank checks under mpirun (skipped, saying so, in a build without MPI).
test: $(BUILD)/rpt_tests $(BUILD)/rpt $(ST_DIFF)
	$(BUILD)/rpt_tests
	bash tests/e2e/run_all.sh $(BUILD)/rpt
	bash tests/mpi/run_mpi_tests.sh $(BUILD)

bench: $(BUILD)/rpt_bench $(BUILD)/rpt
	bash bench/run_all.sh $(BUILD)

run: $(BUILD)/rpt
	$(BUILD)/rpt demo --out $(BUILD)/demo

gpu-check:
	bash tools/gpu-check.sh

# Fails when a CUDA kernel spills registers (reads the ptxas logs of the last build).
ptxas-check: $(LIB)
	bash tools/ptxas-check.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BENCH_OBJS:.o=.d) $(BUILD)/tests/mpi/st_diff.d

# ---- fuzzing (libFuzzer) -----------------------------------------------------------
# `make fuzz` builds the fuzz targets in fuzz/ with clang (ASan + UBSan) and runs each
# for FUZZ_SECONDS (they run in parallel under make -j). Corpora and crash files go to
# $(BUILD)/fuzz/<target>/; the committed fixtures seed them.
FUZZ_CXX      ?= clang++
FUZZ_SECONDS  ?= 600
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CXXFLAGS := -std=c++17 -g -O1 -I. $(FUZZ_SAN)
FUZZ_TARGETS  := fuzz_safetensors fuzz_tokenizer_json fuzz_encode
FUZZ_LIB_SRCS := model/safetensors.cpp model/file_io.cpp model/tokenizer.cpp model/pretokenizer.cpp model/byte_level.cpp
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.cpp=$(BUILD)/fuzz/obj/%.o)
FUZZ_BINS     := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/bin/%)
FUZZ_SEEDS_fuzz_safetensors    := tests/fixtures/hf/tied_gqa2_hd128/model.safetensors
FUZZ_SEEDS_fuzz_tokenizer_json := tests/fixtures/hf_tokenizer/tokenizer.json
FUZZ_SEEDS_fuzz_encode         := tests/fixtures/hf_tokenizer/cases.json
# Longest input per target: the encoder is slow per byte under ASan, so it gets shorter ones.
FUZZ_MAX_LEN_fuzz_safetensors    := 65536
FUZZ_MAX_LEN_fuzz_tokenizer_json := 65536
FUZZ_MAX_LEN_fuzz_encode         := 4096

.PHONY: fuzz fuzz-build $(FUZZ_TARGETS:%=run-%)
fuzz-build: $(FUZZ_BINS)
fuzz: $(FUZZ_TARGETS:%=run-%)
.SECONDARY: $(FUZZ_LIB_OBJS)

$(BUILD)/fuzz/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(BUILD)/fuzz/bin/%: fuzz/%.cpp $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer $^ -o $@ -lfmt -lpcre2-8 -lutf8proc

$(FUZZ_TARGETS:%=run-%): run-%: $(BUILD)/fuzz/bin/%
	@mkdir -p $(BUILD)/fuzz/$*/corpus $(BUILD)/fuzz/$*/crashes
	cp -n $(FUZZ_SEEDS_$*) $(BUILD)/fuzz/$*/corpus/ 2>/dev/null || true
	$(BUILD)/fuzz/bin/$* -max_total_time=$(FUZZ_SECONDS) -max_len=$(FUZZ_MAX_LEN_$*) -timeout=10 -rss_limit_mb=4096 \
	    -artifact_prefix=$(BUILD)/fuzz/$*/crashes/ -print_final_stats=1 $(BUILD)/fuzz/$*/corpus \
	    > $(BUILD)/fuzz/$*.log 2>&1; rc=$$?; tail -n 25 $(BUILD)/fuzz/$*.log; exit $$rc
