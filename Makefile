# Two commands matter: `make demo` and `make test`. Each creates the environment when needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out

# torch==2.13.0 must be installed in the same pip command as everything that depends on it, or pip
# pulls a CUDA build of torch with several GB of CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0" -e ".[all,dev,detect,ray]"
	touch $(STAMP)

.PHONY: env demo test lint bench extension extension-full stock-blender validators clean
env: $(STAMP)

# The Khronos glTF validator (npm), which the export tests check every glTF against.
GLTF_VALIDATOR := build/node/node_modules/gltf-validator/package.json
$(GLTF_VALIDATOR):
	mkdir -p build/node
	npm install --prefix build/node --no-audit --no-fund --loglevel=error gltf-validator@2.0.0-dev.3.10
validators: $(GLTF_VALIDATOR)

demo: $(STAMP)
	$(BIN)/semantify demo --out $(OUT)/demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint $(GLTF_VALIDATOR)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	for bench in render dataset clip_engines mapper extension fitting stock_blender export ray; do $(BIN)/python benchmarks/bench_$$bench.py || exit 1; done

# The Blender extension zip in dist/, built from blender_manifest.toml's [build] rules and then validated,
# both by Blender's own extension tool (the script `blender -c extension` runs; it ships in the bpy wheel).
extension: $(STAMP)
	mkdir -p dist
	ext=$$(ls $(VENV)/lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py | head -n 1); \
	tags=$$(ls $(VENV)/lib/python3*/site-packages/bpy/*/scripts/modules/_bpy_internal/extensions/tags.py | head -n 1); \
	version=$$($(BIN)/python -c "import tomllib; print(tomllib.load(open('blender_manifest.toml', 'rb'))['version'])"); \
	$(BIN)/python "$$ext" build --source-dir . --output-dir dist --valid-tags "$$tags" && \
	$(BIN)/python "$$ext" validate --valid-tags "$$tags" "dist/semantify-$$version.zip"

# The platform extensions: the plain extension plus the CLIP engine (torch CPU, torchvision, open_clip,
# scikit-learn, onnxruntime and onnx, and what they need, pinned in tools/extension-wheels.txt) as Blender
# add-on wheels, one zip per platform (dist/semantify-<version>-linux_x64.zip, windows_x64, macos_arm64),
# each validated by Blender's own tool. The wheels are fetched once into build/wheels/.
extension-full: $(STAMP)
	$(BIN)/python tools/platform_extension.py --out dist

# A stock-Blender environment (only bpy and numpy) in build/stock-blender, as the tests make it.
stock-blender: $(STAMP)
	$(BIN)/python tests/support/stock_env.py

clean:
	rm -rf $(OUT) dist build .pytest_cache .ruff_cache
