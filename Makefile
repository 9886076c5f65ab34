# gantl: make            build the CLI and examples into build/
#        make test       compile checks (C99, C++17, declarations-only) and the test suite
#        make asan       the test suite under AddressSanitizer + UBSan
#        make bench      benchmarks (beside PyTorch when python3-torch is installed)
#        make demo       build and run the main example
#        make fixtures   regenerate tests/fixtures from the PyTorch / NumPy references in tools/
#        make test-tools the Python tools' tests (run by make test when python3-torch is installed)
#        make clean
#        make MPI=1      the CLI with data-parallel training over MPI (mpicc; Debian: openmpi-bin
#                        libopenmpi-dev): mpirun -np K build/gantl train ...
#        make cuda       with nvcc: build/gantl-cuda (the CLI with --device cuda), build/test-cuda,
#                        build/bench-cuda, build/mlp-cuda
#        make cuda MPI=1 NCCL=1  the same with data-parallel training on GPUs: gradients
#                        all-reduced by NCCL, ranks launched by MPI (mpirun -np K
#                        build/gantl-cuda train --device cuda ...)
#        make cuda-check compile and link the CUDA backend and its programs (no GPU needed);
#                        also the NCCL build in build/nccl when nccl.h is found
#        make test-cuda  the CUDA backend against the CPU (needs a GPU)
#        make bench-cuda training img/s and GEMM/conv fraction of peak on the GPU (beside PyTorch
#                        when python3-torch with CUDA is installed)
# Variables: CC, CXX, ARCH (default -march=native), OPENMP (1/0, detected), MPI (1: build/gantl
# with MPI), MPICC, MPICXX, V=1 to echo commands. make test also builds build/gantl-mpi and runs
# the MPI tests when mpicc and mpirun are found. CUDA: NVCC, CUDA_ARCH (nvcc -gencode flags),
# NVCCFLAGS, NCCL (1: the NCCL transport), NCCL_HOME, CUDA_HOME.

CC ?= cc
CXX ?= c++
ARCH ?= -march=native
WARN = -Wall -Wextra
CFLAGS ?= -O2 -g
PYTHON ?= /usr/bin/python3
BUILD = build

ifeq ($(origin OPENMP), undefined)
OPENMP := $(shell echo 'int main(void){return 0;}' | $(CC) -fopenmp -x c - -o /dev/null 2>/dev/null && echo 1 || echo 0)
endif
ifeq ($(OPENMP),1)
OMPFLAGS = -fopenmp
endif
NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
MPICC ?= mpicc
MPICXX ?= mpicxx
HAVE_MPI := $(shell command -v $(MPICC) >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 && echo 1)
HAVE_CLANG := $(shell command -v clang >/dev/null 2>&1 && command -v clang++ >/dev/null 2>&1 && echo 1)

ifneq ($(V),1)
Q = @
endif

ALL_CFLAGS = -std=c99 $(CFLAGS) $(ARCH) $(WARN) $(OMPFLAGS)
LDLIBS = -lm
HEADERS = gantl.h
# the CLI: plain, or with MPI (MPI=1); a change of compiler or flags rebuilds it
ifeq ($(MPI),1)
CLI_CC = $(MPICC)
CLI_FLAGS = $(ALL_CFLAGS) -DGANTL_MPI
else
CLI_CC = $(CC)
CLI_FLAGS = $(ALL_CFLAGS)
endif

.PHONY: all test test-tools asan bench demo mlp-demo fixtures classifier clean config compile-check FORCE \
	cuda cuda-check test-cuda bench-cuda need-nvcc

all: config $(BUILD)/gantl $(BUILD)/mlp

config:
	@echo "gantl: CC=$(CC) OpenMP=$(if $(filter 1,$(OPENMP)),on,off) nvcc=$(if $(NVCC),$(NVCC),not found)" \
		"MPI=$(if $(filter 1,$(MPI)),on,off$(if $(HAVE_MPI), (make MPI=1 to use $(MPICC)),))"

$(BUILD):
	@mkdir -p $(BUILD)

$(BUILD)/.cli-flags: FORCE | $(BUILD)
	@echo '$(CLI_CC) $(CLI_FLAGS)' | cmp -s - $@ || echo '$(CLI_CC) $(CLI_FLAGS)' > $@

$(BUILD)/gantl: examples/gantl.c $(wildcard examples/*.c examples/*.h) $(HEADERS) $(BUILD)/.cli-flags | $(BUILD)
	@echo '#include <stb/stb_image_write.h>' | $(CC) -E -x c - >/dev/null 2>&1 || \
		{ echo "gantl: the CLI writes PNG with stb: install it (Debian: apt-get install libstb-dev)"; exit 1; }
	@$(if $(filter 1,$(MPI)),command -v $(MPICC) >/dev/null 2>&1 || \
		{ echo "gantl: MPI=1 needs $(MPICC) (Debian: apt-get install openmpi-bin libopenmpi-dev)"; exit 1; },true)
	$(Q)$(CLI_CC) $(CLI_FLAGS) -o $@ $< $(LDLIBS)

# The CLI with MPI for the tests (make test builds it when mpicc and mpirun are found).
$(BUILD)/gantl-mpi: examples/gantl.c $(wildcard examples/*.c examples/*.h) $(HEADERS) | $(BUILD)
	$(Q)$(MPICC) $(ALL_CFLAGS) -DGANTL_MPI -o $@ $< $(LDLIBS)

$(BUILD)/mlp: examples/mlp.c $(HEADERS) | $(BUILD)
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LDLIBS)

TEST_SOURCES = $(wildcard tests/*.c tests/*.h)

$(BUILD)/test: $(TEST_SOURCES) $(HEADERS) | $(BUILD)
	$(Q)$(CC) $(ALL_CFLAGS) -pthread -o $@ tests/test_main.c $(LDLIBS)

$(BUILD)/test-asan: $(TEST_SOURCES) $(HEADERS) | $(BUILD)
	$(Q)$(CC) -std=c99 -O1 -g $(WARN) $(OMPFLAGS) -fsanitize=address,undefined -fno-omit-frame-pointer \
		-fno-sanitize-recover=undefined -pthread -o $@ tests/test_main.c $(LDLIBS)

$(BUILD)/bench: tests/bench.c $(wildcard tests/bench_*.c) $(HEADERS) | $(BUILD)
	$(Q)$(CC) $(ALL_CFLAGS) -O2 -o $@ tests/bench.c $(LDLIBS)

# The header must compile as C99 and as C++17 without warnings, and a declarations-only
# translation unit in the other language must link against the implementation.
compile-check: | $(BUILD)
	$(Q)$(CC) -std=c99 $(WARN) -Werror -c tests/compile_impl.c -o $(BUILD)/impl_c.o
	$(Q)$(CXX) -std=c++17 $(WARN) -Werror -c tests/compile_decl.cpp -o $(BUILD)/decl_cpp.o
	$(Q)$(CXX) -o $(BUILD)/compile_c_cpp $(BUILD)/impl_c.o $(BUILD)/decl_cpp.o $(LDLIBS)
	$(Q)$(CXX) -std=c++17 $(WARN) -Werror -x c++ -c tests/compile_impl.c -o $(BUILD)/impl_cpp.o
	$(Q)$(CC) -std=c99 $(WARN) -Werror -x c -c tests/compile_decl.cpp -o $(BUILD)/decl_c.o
	$(Q)$(CXX) -o $(BUILD)/compile_cpp_c $(BUILD)/impl_cpp.o $(BUILD)/decl_c.o $(LDLIBS)
	$(Q)$(BUILD)/compile_c_cpp && $(BUILD)/compile_cpp_c
	$(Q)$(CC) -std=c99 $(WARN) -Werror -fsyntax-only tests/compile_stb.c
	$(Q)$(CXX) -std=c++17 $(WARN) -Werror -fsyntax-only -x c++ tests/compile_stb.c
	$(Q)$(CC) -std=c99 $(WARN) -Werror -DGANTL_STATIC -c tests/compile_impl.c -o $(BUILD)/impl_static_c.o
	$(Q)$(CXX) -std=c++17 $(WARN) -Werror -DGANTL_STATIC -x c++ -c tests/compile_impl.c -o $(BUILD)/impl_static_cpp.o
	$(Q)$(CC) -std=c99 $(WARN) -Werror -o $(BUILD)/compile_alloc tests/compile_alloc.c $(LDLIBS) && $(BUILD)/compile_alloc
	$(Q)if $(CC) -std=c99 -DGANTL_MALLOC=malloc -E tests/compile_impl.c -o /dev/null > $(BUILD)/alloc_one.log 2>&1; then \
		echo "compile check: GANTL_MALLOC without GANTL_REALLOC and GANTL_FREE compiled; it must be an #error"; exit 1; \
	elif ! grep -q 'define all of GANTL_MALLOC, GANTL_REALLOC and GANTL_FREE' $(BUILD)/alloc_one.log; then \
		cat $(BUILD)/alloc_one.log; exit 1; fi
ifeq ($(HAVE_MPI),1)
	$(Q)$(MPICC) -std=c99 $(WARN) -Werror -DGANTL_MPI -fsyntax-only tests/compile_impl.c
	$(Q)$(MPICXX) -std=c++17 $(WARN) -Werror -DGANTL_MPI -fsyntax-only -x c++ tests/compile_impl.c
endif
ifeq ($(HAVE_CLANG),1)
	$(Q)clang -std=c99 $(WARN) -Werror -fsyntax-only tests/compile_impl.c
	$(Q)clang++ -std=c++17 $(WARN) -Werror -fsyntax-only -x c++ tests/compile_impl.c
	$(Q)clang -std=c99 $(WARN) -Werror -fsyntax-only tests/compile_stb.c
	$(Q)clang++ -std=c++17 $(WARN) -Werror -fsyntax-only -x c++ tests/compile_stb.c
	$(Q)clang -std=c99 $(WARN) -Werror -DGANTL_STATIC -c tests/compile_impl.c -o $(BUILD)/impl_static_clang.o
	$(Q)clang++ -std=c++17 $(WARN) -Werror -DGANTL_STATIC -x c++ -c tests/compile_impl.c -o $(BUILD)/impl_static_clangxx.o
endif
	@echo "compile check: C99 and C++17 (gcc$(if $(HAVE_CLANG), and clang)), with and without stb$(if $(HAVE_MPI), and GANTL_MPI), GANTL_STATIC, allocator overrides (all three or an #error), declarations-only units link: ok"

test: compile-check test-tools $(BUILD)/test $(BUILD)/gantl $(if $(HAVE_MPI),$(BUILD)/gantl-mpi)
	$(Q)./$(BUILD)/test

# The Python tools' own tests (the checkpoint and Inception converters), when python3-torch is installed.
test-tools: | $(BUILD)
	$(Q)if $(PYTHON) -c 'import torch, numpy' 2>/dev/null; then \
		$(PYTHON) tools/test_convert.py > $(BUILD)/test_convert.log 2>&1 || { cat $(BUILD)/test_convert.log; exit 1; }; \
		echo "tools/test_convert.py: $$(tail -n 1 $(BUILD)/test_convert.log)"; \
		$(PYTHON) tools/test_convert_inception.py > $(BUILD)/test_convert_inception.log 2>&1 || \
			{ cat $(BUILD)/test_convert_inception.log; exit 1; }; \
		echo "tools/test_convert_inception.py: $$(tail -n 1 $(BUILD)/test_convert_inception.log)"; \
	else echo "tools/test_convert.py, tools/test_convert_inception.py: skipped (python3-torch not installed)"; fi

asan: $(BUILD)/test-asan $(BUILD)/gantl $(if $(HAVE_MPI),$(BUILD)/gantl-mpi)
	$(Q)ASAN_OPTIONS=detect_leaks=1 ./$(BUILD)/test-asan

# Beside PyTorch (python3-torch) and NumPy / SciPy (python3-scipy) when installed, with OpenBLAS
# (libopenblas0-pthread) so that they do not run Debian's reference BLAS; one table of ratios.
bench: $(BUILD)/bench
	$(Q)if $(PYTHON) -c 'import torch' 2>/dev/null; then $(PYTHON) tools/bench_torch.py; \
	else ./$(BUILD)/bench; echo "python3-torch not installed: no PyTorch comparison"; fi

# The paper's main result on the bundled defaults (installs missing Debian packages first).
demo:
	$(Q)bash tools/demo.sh

mlp-demo: $(BUILD)/mlp
	$(Q)./$(BUILD)/mlp

fixtures:
	$(PYTHON) tools/gen_core_fixtures.py
	$(PYTHON) tools/gen_io_fixtures.py
	$(PYTHON) tools/gen_sg2_fixtures.py
	$(PYTHON) tools/gen_ada_fixtures.py
	$(PYTHON) tools/gen_data_fixtures.py
	$(PYTHON) tools/inception_ref.py fixture
	$(PYTHON) tools/ref_metrics.py
	$(PYTHON) tools/train_ref.py
	$(PYTHON) tools/toy2d_ref.py

# ---- CUDA: gantl_cuda.cu with nvcc; the C programs compiled by nvcc too (it hands .c files
# to the host C compiler) with GANTL_WITH_CUDA, and linked with cuBLAS. The plain build and
# make test never need CUDA. Default architectures: Ampere (sm_80) and Hopper (sm_90), plus
# PTX for newer GPUs; e.g. CUDA_ARCH="-arch=native" on a machine with a GPU.
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
	-gencode arch=compute_90,code=compute_90
NVCCFLAGS ?= -O2 -g
NVCC_CU = $(NVCCFLAGS) -std=c++17 $(CUDA_ARCH) -Xcompiler -Wall,-Wextra,-Werror --Werror all-warnings
NVCC_C = $(NVCCFLAGS) -DGANTL_WITH_CUDA -Xcompiler -std=c99 -Xcompiler -Wall -Xcompiler -Wextra -Xcompiler -Werror \
	$(addprefix -Xcompiler ,$(ARCH) $(OMPFLAGS))
NVCC_LIBS = -lcublas -lm $(addprefix -Xcompiler ,$(OMPFLAGS))
CUDA_OBJ = $(BUILD)/gantl_cuda.o
# NCCL (NCCL=1): nccl.h and libnccl under NCCL_HOME (default: the CUDA toolkit of nvcc, else
# /usr or /usr/local, the first with both). gantl_cuda.cu then has the NCCL transport
# (GANTL_NCCL), and every CUDA program links -lnccl.
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))
NCCL_HOME ?= $(firstword $(foreach d,$(CUDA_HOME) /usr /usr/local,$(if $(and $(wildcard $(d)/include/nccl.h),$(wildcard \
	$(d)/lib*/libnccl.so* $(d)/lib/*/libnccl.so*)),$(d))))
NCCL_LIBDIR = $(firstword $(foreach d,lib64 lib lib/x86_64-linux-gnu lib/aarch64-linux-gnu,$(if $(wildcard \
	$(NCCL_HOME)/$(d)/libnccl.so*),$(NCCL_HOME)/$(d))))
NCCL_CFLAGS = -DGANTL_NCCL -I$(NCCL_HOME)/include
NCCL_LIBS = $(if $(NCCL_LIBDIR),-L$(NCCL_LIBDIR) -Xlinker -rpath -Xlinker $(NCCL_LIBDIR)) -lnccl
# MPI=1 in the CUDA build: the CLI with GANTL_MPI, mpicc's flags handed to nvcc (Open MPI's
# --showme, else MPICH's -compile_info / -link_info)
MPI_SHOW_CFLAGS = $(or $(shell $(MPICC) --showme:compile 2>/dev/null),$(wordlist 2,999,$(shell $(MPICC) -compile_info -c 2>/dev/null)))
MPI_SHOW_LIBS = $(or $(shell $(MPICC) --showme:link 2>/dev/null),$(wordlist 2,999,$(shell $(MPICC) -link_info 2>/dev/null)))
nvcc_flag = $(if $(filter -I% -D% -L% -l%,$(1)),$(1),$(if $(filter -Wl$(comma)%,$(1)),-Xlinker $(patsubst -Wl$(comma)%,%,$(1)),$(if \
	$(filter -c %.c,$(1)),,-Xcompiler $(1))))
comma = ,
ifeq ($(NCCL),1)
CUDA_CU_DEFS = $(NCCL_CFLAGS)
CUDA_C_DEFS = $(NCCL_CFLAGS)
CUDA_LINK = $(NCCL_LIBS)
endif
ifeq ($(MPI),1)
CUDA_CLI_DEFS = -DGANTL_MPI $(foreach f,$(MPI_SHOW_CFLAGS),$(call nvcc_flag,$(f)))
CUDA_CLI_LINK = $(foreach f,$(MPI_SHOW_LIBS),$(call nvcc_flag,$(f)))
endif

need-nvcc:
	@test -n "$(NVCC)" || { echo "gantl: the CUDA targets need nvcc (the CUDA toolkit; looked in PATH and /usr/local/cuda/bin)"; exit 1; }
	@$(if $(filter 1,$(NCCL)),test -n "$(NCCL_HOME)" || { echo "gantl: NCCL=1 needs nccl.h (looked in $(CUDA_HOME)/include, /usr/include, /usr/local/include; set NCCL_HOME)"; exit 1; },true)
	@$(if $(filter 1,$(MPI)),command -v $(MPICC) >/dev/null 2>&1 || \
		{ echo "gantl: MPI=1 needs $(MPICC) (Debian: apt-get install openmpi-bin libopenmpi-dev)"; exit 1; },true)

# a change of NCCL / MPI flags rebuilds the CUDA programs
$(BUILD)/.cuda-flags: FORCE | $(BUILD)
	@echo '$(CUDA_CU_DEFS) | $(CUDA_CLI_DEFS) | $(CUDA_LINK) $(CUDA_CLI_LINK)' | cmp -s - $@ || \
		echo '$(CUDA_CU_DEFS) | $(CUDA_CLI_DEFS) | $(CUDA_LINK) $(CUDA_CLI_LINK)' > $@

$(CUDA_OBJ): gantl_cuda.cu $(HEADERS) $(BUILD)/.cuda-flags | $(BUILD) need-nvcc
	$(Q)$(NVCC) $(NVCC_CU) $(CUDA_CU_DEFS) -c $< -o $@

$(BUILD)/gantl-cuda: examples/gantl.c $(wildcard examples/*.c examples/*.h) $(HEADERS) $(CUDA_OBJ) | need-nvcc
	$(Q)$(NVCC) $(NVCC_C) $(CUDA_C_DEFS) $(CUDA_CLI_DEFS) -c $< -o $(BUILD)/gantl-cuda.o
	$(Q)$(NVCC) -o $@ $(BUILD)/gantl-cuda.o $(CUDA_OBJ) $(NVCC_LIBS) $(CUDA_LINK) $(CUDA_CLI_LINK)

$(BUILD)/mlp-cuda: examples/mlp.c $(HEADERS) $(CUDA_OBJ) | need-nvcc
	$(Q)$(NVCC) $(NVCC_C) $(CUDA_C_DEFS) -c $< -o $(BUILD)/mlp-cuda.o
	$(Q)$(NVCC) -o $@ $(BUILD)/mlp-cuda.o $(CUDA_OBJ) $(NVCC_LIBS) $(CUDA_LINK)

$(BUILD)/test-cuda: tests/test_cuda.c tests/test.h tests/op_cases.h $(HEADERS) $(CUDA_OBJ) | need-nvcc
	$(Q)$(NVCC) $(NVCC_C) $(CUDA_C_DEFS) -c $< -o $(BUILD)/test-cuda.o
	$(Q)$(NVCC) -o $@ $(BUILD)/test-cuda.o $(CUDA_OBJ) $(NVCC_LIBS) $(CUDA_LINK)

$(BUILD)/bench-cuda: tests/bench_cuda.c $(HEADERS) $(CUDA_OBJ) | need-nvcc
	$(Q)$(NVCC) $(NVCC_C) $(CUDA_C_DEFS) -c $< -o $(BUILD)/bench-cuda.o
	$(Q)$(NVCC) -o $@ $(BUILD)/bench-cuda.o $(CUDA_OBJ) $(NVCC_LIBS) $(CUDA_LINK)

cuda: $(BUILD)/gantl-cuda $(BUILD)/test-cuda $(BUILD)/bench-cuda $(BUILD)/mlp-cuda

# Compile and link only: what CI runs (it has nvcc but no GPU). With nccl.h found, also
# the NCCL build (as make cuda NCCL=1, plus MPI=1 when mpicc is found) of gantl_cuda.cu, the
# CLI and test-cuda, in $(BUILD)/nccl.
cuda-check: cuda
ifneq ($(NCCL_HOME),)
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/nccl NCCL=1 MPI=$(if $(HAVE_MPI),1,0) NCCL_HOME=$(NCCL_HOME) \
		$(BUILD)/nccl/gantl-cuda $(BUILD)/nccl/test-cuda
	@echo "cuda check: NCCL ($(NCCL_HOME)): gantl_cuda.cu with GANTL_NCCL, the CLI$(if $(HAVE_MPI), with MPI,) and test-cuda linked with -lnccl in $(BUILD)/nccl: ok (nothing run)"
else
	@echo "cuda check: NCCL skipped: nccl.h not found (looked in $(CUDA_HOME)/include, /usr/include, /usr/local/include; set NCCL_HOME)"
endif
	@echo "cuda check: gantl_cuda.cu ($(words $(filter -gencode,$(CUDA_ARCH))) targets), the CLI, mlp, test-cuda and bench-cuda compiled with nvcc and linked with cuBLAS: ok (nothing run)"

test-cuda: $(BUILD)/test-cuda
	$(Q)./$(BUILD)/test-cuda

bench-cuda: $(BUILD)/bench-cuda
	$(Q)./$(BUILD)/bench-cuda
	$(Q)if $(PYTHON) -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then \
		$(PYTHON) tools/bench_cuda_torch.py; else echo "PyTorch with CUDA not available: no PyTorch comparison"; fi

# The Fashion-MNIST feature extractor shipped in models/ (about 30 minutes on 2 cores;
# 92.85% test accuracy, deterministic for a given thread count).
classifier: | $(BUILD)
	$(Q)$(CC) $(ALL_CFLAGS) -o $(BUILD)/train_fmnist_classifier tools/train_fmnist_classifier.c $(LDLIBS)
	$(Q)./$(BUILD)/train_fmnist_classifier models/fmnist_cnn.safetensors

clean:
	rm -rf $(BUILD)
