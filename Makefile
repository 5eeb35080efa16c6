# kvmgate - one flat Makefile.
#
#   make            build bin/kvmgate-fcgi, bin/kvmgate-capture, bin/kvmgate
#   make run        install what is missing, build, run the whole stack in the foreground
#   make start/stop the same stack in the background
#   make test       install what is missing (Debian packages, the npm clients of
#                   tests/e2e), sanitizer build, unit + integration tests
#   make bench      benchmarks (prints figures)
#
# MODE=release (default) builds into build/release and copies the programs to bin/;
# MODE=san builds with ASan+UBSan into build/san/bin (what `make test` runs).

MODE    ?= release
BUILD   := build/$(MODE)
PKGS    := fcgi json-c libpq openssl libcurl libwebsockets libturbojpeg zlib
CC      ?= cc
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter
CFLAGS_release := -O2 -g -D_FORTIFY_SOURCE=2
CFLAGS_san     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
                  -fno-sanitize-recover=undefined
CFLAGS  := -std=gnu11 $(WARN) $(CFLAGS_$(MODE)) -D_GNU_SOURCE -Ishared -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS := $(filter -fsanitize=%,$(CFLAGS_$(MODE)))
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
# Tesseract (OCR) only where the FastCGI program's objects are linked.
OCR_LIBS := $(shell pkg-config --libs tesseract 2>/dev/null)

SHARED_SRC  := $(wildcard shared/*.c)
# fcgi/fixtures.c goes only into the test build of the FastCGI program.
FCGI_SRC    := $(filter-out fcgi/fixtures.c,$(wildcard fcgi/*.c))
CAPTURE_SRC := $(wildcard capture/*.c)
CLI_SRC     := $(wildcard cli/*.c)
CHECK_SRC   := $(wildcard tests/check_*.c)
SIM_SRC     := $(wildcard tests/sim/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
SHARED_OBJ := $(call obj,$(SHARED_SRC))
PROGRAMS   := $(BUILD)/bin/kvmgate-fcgi $(BUILD)/bin/kvmgate-capture $(BUILD)/bin/kvmgate
CHECKS     := $(patsubst tests/%.c,$(BUILD)/tests/%,$(CHECK_SRC))
FIXTURES   := $(BUILD)/tests/kvmgate-fcgi-fixtures
SIMS       := $(BUILD)/tests/sim-nanokvm

.PHONY: all build deps run start stop test unit integration bench clean fuzz fuzz-smoke
.DEFAULT_GOAL := all

all: deps-build
	@$(MAKE) --no-print-directory build MODE=release
	@mkdir -p bin && cp -f build/release/bin/* bin/
	@cp -f build/release/tests/sim-nanokvm bin/kvmgate-sim-nanokvm

build: $(PROGRAMS) $(CHECKS) $(FIXTURES) $(SIMS)

deps-build:
	@scripts/deps.sh build
.PHONY: deps-build

# Unit tests reach into the programs' headers.
$(BUILD)/obj/tests/%.o: CFLAGS += -Ifcgi -Icapture

# Tesseract's headers for the OCR module.
$(BUILD)/obj/fcgi/ocr.o: CFLAGS += $(shell pkg-config --cflags tesseract 2>/dev/null)

# Screenshot pixel loops: the release build lets the compiler vectorise them.
$(BUILD)/obj/fcgi/image.o: CFLAGS += $(if $(filter release,$(MODE)),-O3)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/bin/kvmgate-fcgi: $(call obj,$(FCGI_SRC)) $(SHARED_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(OCR_LIBS)

# The FastCGI program with the MCP conformance fixtures, for tests only.
$(FIXTURES): $(call obj,$(FCGI_SRC) fcgi/fixtures.c) $(SHARED_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(OCR_LIBS)

# The NanoKVM simulator (tests/sim/), for tests and the demo fleet.
$(BUILD)/tests/sim-nanokvm: $(call obj,$(SIM_SRC)) $(SHARED_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/kvmgate-capture: $(call obj,$(CAPTURE_SRC)) $(SHARED_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bin/kvmgate: $(call obj,$(CLI_SRC)) $(SHARED_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# A unit test links shared/; tests named check_fcgi_* or check_capture_* also link
# that program's objects other than its main.o; check_sim_* links the simulator's
# building blocks (not nanokvm*.o, the device itself).
prog_obj = $(filter-out %/main.o,$(call obj,$(1)))
$(BUILD)/tests/check_fcgi_%: $(BUILD)/obj/tests/check_fcgi_%.o $(SHARED_OBJ) $(call prog_obj,$(FCGI_SRC))
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(OCR_LIBS) $(CHECK_LIBS)
$(BUILD)/tests/check_capture_%: $(BUILD)/obj/tests/check_capture_%.o $(SHARED_OBJ) $(call prog_obj,$(CAPTURE_SRC))
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(CHECK_LIBS)
$(BUILD)/tests/check_sim_%: $(BUILD)/obj/tests/check_sim_%.o $(SHARED_OBJ) $(filter-out %/nanokvm.o %/nanokvm_api.o,$(call obj,$(SIM_SRC)))
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(CHECK_LIBS)
$(BUILD)/tests/check_%: $(BUILD)/obj/tests/check_%.o $(SHARED_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(CHECK_LIBS)

# libFuzzer targets for the parsers of outside bytes, built with clang.
# `make fuzz` runs each for FUZZ_SECONDS; `make test` runs a fixed number of inputs.
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
              -Ishared -Ifcgi -Icapture $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZERS := build/fuzz/fuzz_url build/fuzz/fuzz_ctl build/fuzz/fuzz_audit build/fuzz/fuzz_ws \
           build/fuzz/fuzz_rfb build/fuzz/fuzz_wsc
build/fuzz/fuzz_url: tests/fuzz/fuzz_url.c $(SHARED_SRC) $(filter-out fcgi/main.c,$(FCGI_SRC))
build/fuzz/fuzz_ctl: tests/fuzz/fuzz_ctl.c $(SHARED_SRC) $(filter-out capture/main.c,$(CAPTURE_SRC))
build/fuzz/fuzz_audit: tests/fuzz/fuzz_audit.c $(SHARED_SRC)
build/fuzz/fuzz_ws: tests/fuzz/fuzz_ws.c $(SHARED_SRC) $(filter-out capture/main.c,$(CAPTURE_SRC))
build/fuzz/fuzz_rfb: tests/fuzz/fuzz_rfb.c $(SHARED_SRC) capture/rfb.c capture/rfb_decode.c capture/keys.c
build/fuzz/fuzz_wsc: tests/fuzz/fuzz_wsc.c $(SHARED_SRC) $(filter-out capture/main.c,$(CAPTURE_SRC))
$(FUZZERS):
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	@clang $(FUZZ_FLAGS) -o $@ $^ $(LIBS) $(OCR_LIBS)

fuzz: $(FUZZERS)
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f); mkdir -p build/fuzz/corpus-$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus-$$n tests/fuzz/seeds/$$n; done

# libFuzzer saves new inputs in its first corpus directory: a scratch one, so the
# checked-in seeds stay as they are.
fuzz-smoke: $(FUZZERS)
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f); echo "== $$n"; \
	  rm -rf build/fuzz/smoke-$$n; mkdir -p build/fuzz/smoke-$$n; \
	  $$f -runs=200000 -seed=1 build/fuzz/smoke-$$n tests/fuzz/seeds/$$n 2>&1 | tail -n 2; done

run: all
	@scripts/deps.sh run
	@KVMGATE_DEMO=$${KVMGATE_DEMO:-auto} exec scripts/stack.sh run

start: all
	@scripts/deps.sh run
	@KVMGATE_DEMO=$${KVMGATE_DEMO:-auto} scripts/stack.sh start

stop:
	@scripts/stack.sh stop

test:
	@scripts/deps.sh test
	@scripts/e2e-deps.sh >/dev/null
	@$(MAKE) --no-print-directory build MODE=san
	@$(MAKE) --no-print-directory unit fuzz-smoke integration MODE=san

unit: build
	@set -e; for t in $(CHECKS); do echo "== $$t"; CK_FORK=yes $$t; done

integration: build
	@KVMGATE_BIN_DIR=$(CURDIR)/$(BUILD)/bin tests/integration/run.sh

bench: all
	@scripts/deps.sh test
	@tests/bench/run.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
