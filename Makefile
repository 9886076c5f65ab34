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
# Variables: CC, CXX, ARCH (default -march=native), OPENMP (1/0, detected), MPI (1: build/gantl
# with MPI), MPICC, MPICXX, V=1 to echo commands. make test also builds build/gantl-mpi and runs
# the MPI tests when mpicc and mpirun are found.

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

.PHONY: all test test-tools asan bench demo mlp-demo fixtures classifier clean config compile-check FORCE

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
ifeq ($(HAVE_MPI),1)
	$(Q)$(MPICC) -std=c99 $(WARN) -Werror -DGANTL_MPI -fsyntax-only tests/compile_impl.c
	$(Q)$(MPICXX) -std=c++17 $(WARN) -Werror -DGANTL_MPI -fsyntax-only -x c++ tests/compile_impl.c
endif
ifeq ($(HAVE_CLANG),1)
	$(Q)clang -std=c99 $(WARN) -Werror -fsyntax-only tests/compile_impl.c
	$(Q)clang++ -std=c++17 $(WARN) -Werror -fsyntax-only -x c++ tests/compile_impl.c
	$(Q)clang -std=c99 $(WARN) -Werror -fsyntax-only tests/compile_stb.c
	$(Q)clang++ -std=c++17 $(WARN) -Werror -fsyntax-only -x c++ tests/compile_stb.c
endif
	@echo "compile check: C99 and C++17 (gcc$(if $(HAVE_CLANG), and clang)), with and without stb$(if $(HAVE_MPI), and GANTL_MPI), declarations-only units link: ok"

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

bench: $(BUILD)/bench
	$(Q)if $(PYTHON) -c 'import torch' 2>/dev/null; then $(PYTHON) tools/bench_torch.py; \
	else ./$(BUILD)/bench; echo "python3-torch not installed: no PyTorch comparison"; fi
	$(Q)if $(PYTHON) -c 'import scipy' 2>/dev/null; then $(PYTHON) tools/bench_metrics.py; fi

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

# The Fashion-MNIST feature extractor shipped in models/ (about 30 minutes on 2 cores;
# 92.85% test accuracy, deterministic for a given thread count).
classifier: | $(BUILD)
	$(Q)$(CC) $(ALL_CFLAGS) -o $(BUILD)/train_fmnist_classifier tools/train_fmnist_classifier.c $(LDLIBS)
	$(Q)./$(BUILD)/train_fmnist_classifier models/fmnist_cnn.safetensors

clean:
	rm -rf $(BUILD)
