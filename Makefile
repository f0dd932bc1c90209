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
APT_PACKAGES := build-essential pkg-config python3-venv valgrind

.PHONY: deps venv model build demo test check-format clippy unit-tests doc header check-header bench-build \
        install uninstall bench clean

deps:
	scripts/setup.sh apt $(APT_PACKAGES)

venv: deps
	scripts/setup.sh venv

model: venv
	scripts/setup.sh model

build: venv
	$(CARGO) build $(CARGO_FLAGS) --bins --lib --examples

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

test: deps venv model check-format clippy unit-tests doc bench-build
	@echo "all checks passed"

bench: model build
	scripts/bench-cpu.sh

clean:
	$(CARGO) clean
	rm -rf out build
