#!/usr/bin/env bash
# Rebuilds src/halohand/viewer/static/vendor/three-bundle.min.js: the parts of three.js the
# viewer imports (viewer.js), bundled and minified with esbuild into one ES module so the
# page loads one small file and works offline. Needs node/npm and the npm registry.
# Usage: scripts/vendor_three.sh [three-version]
set -euo pipefail
VERSION="${1:-0.187.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/src/halohand/viewer/static/vendor"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
echo '{"private": true}' > package.json
npm install --no-audit --no-fund --silent "three@$VERSION" esbuild@0.25
# exactly the names viewer.js imports; everything else is tree-shaken away
cat > entry.js <<'JS'
export {
  Box3, BufferAttribute, Color, DirectionalLight, DoubleSide, HemisphereLight,
  LineBasicMaterial, MeshStandardMaterial, PerspectiveCamera, PointsMaterial,
  SRGBColorSpace, Scene, Vector3, WebGLRenderer,
} from "three";
export { OrbitControls } from "three/addons/controls/OrbitControls.js";
export { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
JS
npx esbuild entry.js --bundle --format=esm --minify --legal-comments=none \
  --banner:js="/* three.js ${VERSION} (MIT, see LICENSE), OrbitControls and GLTFLoader; bundled by scripts/vendor_three.sh */" \
  --outfile="$OUT/three-bundle.min.js"
cp node_modules/three/LICENSE "$OUT/LICENSE"
echo "three@$VERSION" > "$OUT/VERSION"
ls -l "$OUT"
