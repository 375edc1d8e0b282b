# rpt — the only build. `make` builds everything; `make test`, `make bench`, `make run`,
# `make gpu-check`, `make clean`. CUDA=0 builds a CPU-only binary; CUDA_ARCH picks the
# GPU architectures (default sm_80 and sm_90).

CXX       ?= g++
NVCC      ?= nvcc
BUILD     ?= build
CUDA      ?= $(if $(shell command -v $(NVCC) 2>/dev/null),1,0)
CUDA_ARCH ?= 80,90
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
# The CPU backend is the hot path of the demo: let the compiler use this machine's SIMD.
ARCH_FLAGS ?= -march=native

comma := ,

CXXFLAGS ?= -O3 $(ARCH_FLAGS) -g
CXXFLAGS += -std=c++17 -Wall -Wextra -fopenmp -I. -MMD -MP
LDLIBS   += -fopenmp -lfmt -lpcre2-8 -lutf8proc -lpthread

LIB_DIRS  := kernels kernels/cpu model rl comm
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
endif

LIB_OBJS   := $(LIB_SRCS:%.cpp=$(BUILD)/%.o) $(CU_OBJS)
CLI_OBJS   := $(CLI_SRCS:%.cpp=$(BUILD)/%.o)
TEST_OBJS  := $(TEST_SRCS:%.cpp=$(BUILD)/%.o)
BENCH_OBJS := $(BENCH_SRCS:%.cpp=$(BUILD)/%.o)
LIB        := $(BUILD)/librpt.a
DEPS_STAMP := $(BUILD)/.deps-installed

.PHONY: all deps test bench run gpu-check clean ptxas-check
all: $(BUILD)/rpt $(BUILD)/rpt_tests $(BUILD)/rpt_bench

# Installs the Debian packages the build needs (once per build tree; the script itself
# is idempotent and only installs what is missing).
deps: $(DEPS_STAMP)
$(DEPS_STAMP): tools/install-deps.sh
	@mkdir -p $(BUILD)
	bash tools/install-deps.sh
	@touch $@

$(BUILD)/%.o: %.cpp | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# ptxas resource usage (registers, spills) of every kernel is kept next to the object.
$(BUILD)/%.o: %.cu | $(DEPS_STAMP)
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

# Unit tests, then the end-to-end checks (CLI errors, the quick demo).
test: $(BUILD)/rpt_tests $(BUILD)/rpt
	$(BUILD)/rpt_tests
	bash tests/e2e/run_all.sh $(BUILD)/rpt

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

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_OBJS:.o=.d) $(BENCH_OBJS:.o=.d)
