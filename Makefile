# ebpf-server. The two commands that matter:
#   make run    set up, build and start the server (ARGS="--addr :9090" passes flags)
#   make test   set up, build and run every test (deno task test)
# Also: make prepare (setup + what running from source needs), make build / build-dev
# (the single executable; honours DENORT_BIN), make check (fmt, lint, type check), make clean,
# make test-as-user (the integration tests again, each server as a non-root uid with only the
# capabilities it needs; CI runs it after make test).

SHELL := /bin/bash
.DEFAULT_GOAL := prepare

BUILD := build
DEPS := $(BUILD)/deps
CLANG ?= clang
LLVM_STRIP ?= llvm-strip
CC := cc
DENO ?= deno
ARGS ?=
DENORT_BIN ?=
ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_OBJ := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRC))
BPF_HDR := $(wildcard bpf/*.h bpf/include/*.h)
SHIM := $(BUILD)/libebpf_shim.so
DEPS_LIBS := $(DEPS)/lib/libbpf.a $(DEPS)/lib/libelf.a $(DEPS)/lib/libz.a
NODE_MODULES := node_modules/.deno/.setup-cache.bin

.PHONY: setup prepare run test test-as-user test-kernels build build-dev check clean bench bench-quick

setup:
	@scripts/setup.sh

# libbpf, libelf and zlib rebuilt position-independent, so the shim needs only libc.
$(DEPS_LIBS) &: ffi/build_deps.sh | setup
	ffi/build_deps.sh $(DEPS)

$(BUILD)/vmlinux.h: | setup
	@mkdir -p $(@D)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# CO-RE objects; DWARF is stripped, BTF (which the decoders read offsets from) stays.
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDR) $(BUILD)/vmlinux.h $(DEPS_LIBS)
	@mkdir -p $(@D)
	$(CLANG) -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
		-I$(BUILD) -Ibpf/include -Ibpf -I$(DEPS)/include -c $< -o $@.full
	$(LLVM_STRIP) -g $@.full -o $@
	@rm -f $@.full

SHIM_SRC := ffi/shim.c $(wildcard ffi/columns_*.c)

$(SHIM): $(SHIM_SRC) ffi/shim.h $(BPF_HDR) $(DEPS_LIBS)
	@mkdir -p $(@D)
	$(CC) -shared -fPIC -O2 -Wall -Wextra -Werror -I$(DEPS)/include $(SHIM_SRC) $(DEPS_LIBS) \
		-Wl,--exclude-libs,ALL -Wl,-z,defs -Wl,-z,text -o $@
	strip --strip-unneeded $@

$(NODE_MODULES): deno.json deno.lock | setup
	$(DENO) install --frozen
	@touch $@

prepare: setup $(BPF_OBJ) $(SHIM) $(NODE_MODULES)

run: prepare
	$(DENO) task start $(ARGS)

test: prepare
	@SETUP_TEST_PACKAGES=1 scripts/setup.sh
	$(DENO) task test

# The integration tests (tests/) once more, every server they start running as a uid with no
# account, through setpriv with only CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH CAP_NET_ADMIN CAP_SYSLOG, from a
# copy of the tree any user can read (tests/_server.ts). Needs root, as make test does.
test-as-user: prepare
	@SETUP_TEST_PACKAGES=1 scripts/setup.sh
	EBPF_TEST_AS_USER=1 $(DENO) test --allow-all tests/

# The privileged tests on Debian's 5.10, 6.1 and 6.12 kernels under qemu (tests/kernels/README.md);
# ARGS="--kernels 6.1 --tests all" passes options to tests/kernels/run.sh.
test-kernels: prepare
	@SETUP_TEST_PACKAGES=1 scripts/setup.sh
	tests/kernels/run.sh $(ARGS)

# Workers are not found by deno compile's module graph: they are included by name.
COMPILE = $(if $(DENORT_BIN),DENORT_BIN=$(DENORT_BIN)) $(DENO) compile --allow-all \
	--include $(BUILD)/bpf --include $(SHIM) \
	--include src/http/bcrypt_worker.ts --include src/server/watchdog_worker.ts --output ebpf-server

DENORT_HINT = { echo "make: deno compile needs its denort runtime and could not get it; download it where you can and run make $@ DENORT_BIN=/path/to/denort (see README)" >&2; exit 1; }

build: prepare
	$(COMPILE) src/main.ts || $(DENORT_HINT)

build-dev: prepare
	$(COMPILE) src/main_dev.ts || $(DENORT_HINT)

# Benchmarks (issue 6): bench/run.sh writes bench/RESULTS.md; --quick takes about 2 minutes.
bench: prepare
	bench/run.sh

bench-quick: prepare
	bench/run.sh --quick

check: prepare
	$(DENO) fmt --check
	$(DENO) lint
	$(DENO) check src/ tests/ bench/ scripts/

clean:
	rm -rf $(BUILD)/bpf $(BUILD)/vmlinux.h $(SHIM) ebpf-server bench/build
