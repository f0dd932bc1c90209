# styletransfer: set-up, build, test, install.
#
#   make demo    install what is missing, build, stylise the sample -> out/demo.png
#   make test    install what is missing, build, run every check (what CI runs)
#
# Both work on a fresh Debian 12 machine and are idempotent. Other targets:
# model, venv, build, install, header, gpu-bundle, test-gimp, test-ofx,
# install-gimp, install-ofx, bench.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := build

ROOT := $(abspath .)
PREFIX ?= /usr/local
CACHE := $(shell scripts/setup.sh cache-dir)

# Build against the venv's libtorch (torch==2.11.0 from PyPI).
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(ROOT)/.venv/bin:$(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo
CARGO_FLAGS ?= --release --locked

# Debian packages the build and the tests need.
APT_PACKAGES := build-essential pkg-config python3-venv valgrind libpng-dev

.PHONY: deps venv model build demo test check-format clippy unit-tests doc header bench-build \
        install bench clean test-c c-example

deps:
	scripts/setup.sh apt $(APT_PACKAGES)

venv: deps
	scripts/setup.sh venv

model: venv
	scripts/setup.sh model

build: venv
	$(CARGO) build $(CARGO_FLAGS) --bins --lib --examples
	scripts/install.sh --uninstalled

# Regenerate include/styletransfer.h from src/capi/ (tests/header.rs checks it).
header: venv
	UPDATE_HEADER=1 $(CARGO) test $(CARGO_FLAGS) --test header

install: build model
	scripts/install.sh "$(PREFIX)"

# C tests against the installed header and library, under AddressSanitizer
# and under valgrind memcheck. TEST_PREFIX is a throwaway install.
TEST_PREFIX := $(ROOT)/build/install
C_PKG = PKG_CONFIG_PATH=$(TEST_PREFIX)/lib/pkgconfig pkg-config
C_FLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -g -O1

test-c: build model
	scripts/install.sh "$(TEST_PREFIX)" >/dev/null
	mkdir -p build/c
	cc $(C_FLAGS) -fsanitize=address,undefined -fno-omit-frame-pointer tests/c/test_capi.c \
	    $$($(C_PKG) --cflags --libs styletransfer) -lm -lpthread -o build/c/test_capi_asan
	cc $(C_FLAGS) tests/c/test_capi.c $$($(C_PKG) --cflags --libs styletransfer) -lm -lpthread -o build/c/test_capi
	@echo "== C tests under AddressSanitizer"
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1 build/c/test_capi_asan
	@echo "== C tests under valgrind memcheck"
	valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	    --show-leak-kinds=definite --suppressions=tests/c/valgrind.supp build/c/test_capi

# The C example, built from the installed .pc, on the sample images.
c-example: build model
	scripts/install.sh "$(TEST_PREFIX)" >/dev/null
	mkdir -p build/c
	cc -O2 -Wall -Werror examples/c/stylize.c $$($(C_PKG) --cflags --libs styletransfer libpng) -o build/c/stylize-c
	.venv/bin/python3 -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("RGB").save(sys.argv[2]); Image.open(sys.argv[3]).convert("RGB").save(sys.argv[4])' \
	    examples/images/chelsea.jpg build/c/chelsea.ppm examples/images/mosaic.jpg build/c/mosaic.png
	build/c/stylize-c build/c/chelsea.ppm build/c/mosaic.png build/c/chelsea-mosaic.png --size 48 --iterations 3 --device cpu
	.venv/bin/python3 -c 'import sys; from PIL import Image; im = Image.open(sys.argv[1]); assert im.size == (451, 300), im.size; print("C example output", im.size, im.mode)' build/c/chelsea-mosaic.png

demo: model build
	mkdir -p out
	target/release/stylize --content examples/images/chelsea.jpg --style examples/images/swirls.jpg \
	    -o out/demo.png --size 256 --iterations 100 --report json
	@echo "wrote out/demo.png"

check-format:
	$(CARGO) fmt --check

clippy: venv
	$(CARGO) clippy $(CARGO_FLAGS) --all-targets -- -D warnings

unit-tests: model build
	$(CARGO) test $(CARGO_FLAGS)

doc: venv
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc $(CARGO_FLAGS) --no-deps --lib

bench-build: venv
	$(CARGO) bench $(CARGO_FLAGS) --no-run

test: deps venv model check-format clippy unit-tests doc bench-build test-c c-example
	@echo "all checks passed"

bench: model build
	scripts/bench-cpu.sh

clean:
	$(CARGO) clean
	rm -rf out build
