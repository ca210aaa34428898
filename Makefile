# cliplab — build, test, bench and the ablation jobs.
#
#   make                  build build/cliplab, build/cliplab-mpi, build/libcliplab.a, build/libcliplab.so
#   make test [SAN=1]     every tests/test_*.c (cmocka), summary line at the end
#   make bench            tests/bench/bench_*.c and the PyTorch reference (installs python3-torch)
#   make deps             check (and as root install) the Debian packages below
#   make ablation-projection | ablation-efficiency | ablation-loss | ablation-loss-group | ablation-tap
#                         [PROFILE=...] [JOBS=n]
#   make plots            re-render plots/ from existing results without retraining
#   make fuzz [FUZZ_S=60] build the libFuzzer targets (clang) into build/fuzz; with FUZZ_S, run
#                         each for FUZZ_S seconds (FUZZ_TARGETS="spec idx" picks some; see
#                         tests/fuzz/README.md). `make test` runs each for FUZZ_SMOKE_S seconds.
#
# Developer knobs: MODS="common ops" limits the library to those core/ modules and TESTS="ops"
# limits the tests (useful while other modules are being edited); SAN=1 builds under build/san
# with ASan+UBSan.

SHELL := /bin/bash
CC ?= gcc
PROFILE ?= quick
JOBS ?= $(shell nproc)

DEB_PACKAGES := gcc make pkg-config libopenblas0-openmp libopenblas-dev libhdf5-dev libyaml-dev \
                libcmocka-dev zlib1g-dev gnuplot-nox hdf5-tools dataset-fashion-mnist git \
                libopenmpi-dev openmpi-bin
# Only the fuzz targets need clang and its libFuzzer/sanitizer runtimes; `make test` runs them
# briefly, so CI installs these too, but `make`, `make bench` and the ablations do not need them.
FUZZ_DEB_PACKAGES := clang-14 libclang-rt-14-dev
# Only `make bench` needs PyTorch: the reference the training steps are compared with (never a
# dependency of cliplab itself).
BENCH_DEB_PACKAGES := python3-torch

# Paths asked of the system, not written down: the compiler's multiarch triplet and HDF5's
# pkg-config file (Debian ships hdf5.pc for the serial build). Each is computed the first time a
# recipe needs it, so after the deps step has installed the packages, then cached ($(eval)).
MULTIARCH = $(eval MULTIARCH := $(shell $(CC) -print-multiarch))$(MULTIARCH)
HDF5_CFLAGS = $(eval HDF5_CFLAGS := $(call pkg_config,--cflags,hdf5))$(HDF5_CFLAGS)
HDF5_LIBS = $(eval HDF5_LIBS := $(call pkg_config,--libs,hdf5))$(HDF5_LIBS)
pkg_config = $(or $(shell pkg-config $(1) $(2) 2>/dev/null),$(error pkg-config $(1) $(2) failed: install $(2)'s -dev package (make deps)))
# Debian's default libopenblas is the pthread build, which oversubscribes cores under OpenMP, so
# the OpenMP build is linked by path (and checked at start-up with openblas_get_parallel()).
OPENBLAS_OMP_DIR = /usr/lib/$(MULTIARCH)/openblas-openmp

ifeq ($(SAN),1)
BUILD := build/san
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
BUILD := build
OPT := -O3 -march=native -g
endif

CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fPIC -fopenmp $(OPT) -Icore $(HDF5_CFLAGS) -MMD -MP
LDLIBS = -L$(OPENBLAS_OMP_DIR) -l:libopenblas.so.0 -Wl,-rpath,$(OPENBLAS_OMP_DIR) \
          $(HDF5_LIBS) -lyaml -lz -lm -fopenmp
LDFLAGS := $(OPT)

MODS ?= $(notdir $(patsubst %/,%,$(wildcard core/*/)))
# core/cli/main.c is the program; core/dist/ is the MPI program (build/cliplab-mpi: its main and the
# MPI Comm, the only code that includes mpi.h); everything else under core/ is the library.
MPI_SRCS := $(wildcard core/dist/*.c)
LIB_SRCS := $(filter-out core/cli/main.c $(MPI_SRCS),$(foreach m,$(MODS),$(wildcard core/$(m)/*.c)))
# Asked of Open MPI's pkg-config file the first time a recipe needs them, as HDF5's above.
MPI_CFLAGS = $(eval MPI_CFLAGS := $(call pkg_config,--cflags,ompi-c))$(MPI_CFLAGS)
MPI_LIBS = $(eval MPI_LIBS := $(call pkg_config,--libs,ompi-c))$(MPI_LIBS)
LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
TEST_SRCS := $(wildcard tests/test_*.c)
TESTS ?= $(patsubst tests/test_%.c,%,$(TEST_SRCS))
TEST_BINS := $(patsubst %,$(BUILD)/tests/test_%,$(TESTS))
BENCH_SRCS := $(wildcard tests/bench/bench_*.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
CLI := $(BUILD)/cliplab
CLI_MPI := $(BUILD)/cliplab-mpi
DEPS_STAMP := build/.deps-ok
FUZZ_DEPS_STAMP := build/.fuzz-deps-ok
BENCH_DEPS_STAMP := build/.bench-deps-ok

.SECONDARY:
.PHONY: all deps test bench clean plots fuzz fuzz-build

all: $(DEPS_STAMP) $(CLI) $(CLI_MPI) $(BUILD)/libcliplab.a $(BUILD)/libcliplab.so

deps: $(DEPS_STAMP)

# Checks every package; installs the missing ones non-interactively when root, otherwise prints
# the exact command and stops.
$(DEPS_STAMP): PACKAGES := $(DEB_PACKAGES)
$(FUZZ_DEPS_STAMP): PACKAGES := $(FUZZ_DEB_PACKAGES)
$(BENCH_DEPS_STAMP): PACKAGES := $(BENCH_DEB_PACKAGES)
$(DEPS_STAMP) $(FUZZ_DEPS_STAMP) $(BENCH_DEPS_STAMP): Makefile
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing || exit 1; \
	  else \
	    echo "deps: missing Debian packages:$$missing"; \
	    echo "deps: run: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi
	@mkdir -p build && touch $@

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libcliplab.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libcliplab.so: $(LIB_OBJS)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(CLI): $(BUILD)/core/cli/main.o $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/core/dist/%.o: core/dist/%.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -c $< -o $@

$(CLI_MPI): $(patsubst %.c,$(BUILD)/%.o,$(MPI_SRCS)) $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(MPI_LIBS) $(LDLIBS)

# The commit the binaries are built from, "-dirty" appended when `git status --porcelain` lists
# anything, compiled into runlog.o and written to every run file as build_commit (git_commit is the
# checkout a run starts in, which moves on when main does while an old binary still runs). The
# stamp is rewritten only when the value changes, so runlog.o rebuilds only then.
BUILD_COMMIT_STAMP := $(BUILD)/.build-commit
.PHONY: FORCE
$(BUILD_COMMIT_STAMP): FORCE
	@mkdir -p $(dir $@); c=$$(git rev-parse HEAD 2>/dev/null || echo unknown); \
	if [ "$$c" != unknown ] && [ -n "$$(git status --porcelain 2>/dev/null)" ]; then c="$$c-dirty"; fi; \
	[ -f $@ ] && [ "$$(cat $@)" = "$$c" ] || echo "$$c" > $@
$(BUILD)/core/log/runlog.o: $(BUILD_COMMIT_STAMP)
$(BUILD)/core/log/runlog.o: CFLAGS += -DCLIPLAB_BUILD_COMMIT='"$(shell cat $(BUILD_COMMIT_STAMP))"'

# tests/gradcheck.c: the finite-difference checker, test-only code linked into every test binary.
$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $(BUILD)/tests/gradcheck.o $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

# test_dist and bench_dist run their ranks under mpirun with the MPI Comm of build/cliplab-mpi.
$(BUILD)/tests/test_dist: $(BUILD)/tests/test_dist.o $(BUILD)/core/dist/comm_mpi.o $(LIB_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka $(MPI_LIBS) $(LDLIBS)

$(BUILD)/bench/bench_dist: $(BUILD)/tests/bench/bench_dist.o $(BUILD)/core/dist/comm_mpi.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(MPI_LIBS) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The suite runs the CLI too (spec errors, smoke sweeps), so it is built first. It ends with a
# short run of every fuzz target (one entry of the summary), unless MODS/TESTS narrow the suite or
# FUZZ_SMOKE_S=0.
FUZZ_SMOKE_S ?= $(if $(filter command line,$(origin MODS) $(origin TESTS)),0,3)
FUZZ_SMOKE := $(if $(filter-out 0,$(FUZZ_SMOKE_S)),tests/fuzz/run_fuzz.sh)
test: $(DEPS_STAMP) $(if $(filter command line,$(origin MODS)),,$(CLI) $(CLI_MPI)) $(TEST_BINS) $(if $(FUZZ_SMOKE),fuzz-build)
	@CLIPLAB=$(CLI) CLIPLAB_MPI=$(CLI_MPI) FUZZ_SECONDS=$(FUZZ_SMOKE_S) FUZZ_SEED=1 tests/run_tests.sh $(TEST_BINS) tests/test_layers.sh tests/test_ablation_list.sh $(FUZZ_SMOKE)

bench: $(DEPS_STAMP) $(BENCH_DEPS_STAMP) $(CLI) $(BENCH_BINS)
	@for b in $(BENCH_BINS); do echo "== $$b"; $$b || exit 1; done
	@if [ -x tests/bench/run_bench.sh ]; then CLIPLAB=$(CLI) tests/bench/run_bench.sh; fi

# ablations/LIST is the one list of ablations: target names (column 1) and results folders (2).
ABLATION_LIST := $(shell awk '!/^\#/ && NF { print $$1 }' ablations/LIST)
ABLATION_DIRS := $(shell awk '!/^\#/ && NF { print $$2 }' ablations/LIST)
ABLATIONS := $(addprefix ablation-,$(ABLATION_LIST))
.PHONY: $(ABLATIONS)
$(ABLATIONS): ablation-%: all
	@ablations/run_ablation.sh $* $(PROFILE) $(CLI) $(JOBS)

# Re-renders every figure from the results already on disk (no training): an ablation's own
# results/<dir> if it has been run here, else the run files the README reports,
# results/published/<dir> (committed, so a fresh clone plots without retraining); the same for a
# long or full profile's folder (<dir>-long), whose figures carry the profile in their names.
plots: all
	@for d in $(ABLATION_DIRS); do for p in '' -long -full; do \
	  r=results/$$d$$p; [ -d $$r ] || r=results/published/$$d$$p; \
	  if [ -d $$r ]; then plots/render.sh $(CLI) $$d $$r; fi; \
	done; done

# ---- fuzzing: libFuzzer targets built with clang under ASan+UBSan, each from its harness in
# tests/fuzz/fuzz_<target>.c linked against the library compiled with clang into build/fuzz/obj
# (the linker takes from the archive what the target reaches). OpenMP pragmas are left out (the
# targets run one thread); the few omp_* calls and the OpenMP OpenBLAS use gcc's libgomp.
FUZZ_CC ?= clang-14
FUZZ_DIR := build/fuzz
FUZZ_TARGETS ?= spec override ablation idx runfile
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unknown-pragmas -O1 -g \
               -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link -Icore -Itests/fuzz \
               $(HDF5_CFLAGS) -DFUZZ_TREE='"$(CURDIR)"' -MMD -MP
FUZZ_LDLIBS = $(subst -fopenmp,-l:libgomp.so.1,$(LDLIBS))
fuzz_objs = $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(1))
FUZZ_LIB := $(FUZZ_DIR)/libcliplab.a
FUZZ_BINS := $(patsubst %,$(FUZZ_DIR)/fuzz_%,$(FUZZ_TARGETS))
FUZZ_DICTS := $(FUZZ_DIR)/spec.dict

$(FUZZ_DIR)/obj/%.o: %.c | $(FUZZ_DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_LIB): $(call fuzz_objs,$(filter-out $(MPI_SRCS),$(wildcard core/*/*.c)))
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LDLIBS)

# The dictionary of the spec targets is generated from the schema (tests/fuzz/gen_dict.c).
$(FUZZ_DIR)/gen_dict: $(FUZZ_DIR)/obj/tests/fuzz/gen_dict.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -o $@ $^ $(FUZZ_LDLIBS)

$(FUZZ_DIR)/spec.dict: $(FUZZ_DIR)/gen_dict
	$< > $@.tmp && mv $@.tmp $@

fuzz-build: $(FUZZ_DEPS_STAMP) $(FUZZ_BINS) $(FUZZ_DICTS)

fuzz: fuzz-build
	@if [ -n "$(FUZZ_S)" ]; then FUZZ_BIN_DIR=$(FUZZ_DIR) FUZZ_CORPUS_DIR=$(FUZZ_DIR)/corpus \
	  tests/fuzz/run_fuzz.sh $(FUZZ_S) $(FUZZ_TARGETS); fi

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
