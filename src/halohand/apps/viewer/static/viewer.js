// halohand view: shows the GLB frames listed in /frames.json (PLY / OBJ inputs arrive
// converted to GLB by the server, so GLTFLoader is the only loader needed).
import {
  Box3,
  BufferAttribute,
  Color,
  DirectionalLight,
  DoubleSide,
  HemisphereLight,
  LineBasicMaterial,
  MeshStandardMaterial,
  OrbitControls,
  PerspectiveCamera,
  PointsMaterial,
  SRGBColorSpace,
  Scene,
  Vector3,
  WebGLRenderer,
  GLTFLoader,
} from "./vendor/three-bundle.min.js";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const renderer = new WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio);
const scene = new Scene();
scene.background = new Color(0xf3f4f6);
const camera = new PerspectiveCamera(35, 1, 0.001, 1000);
const controls = new OrbitControls(camera, canvas);
controls.enableDamping = true;

// Sky/ground fill plus a light that follows the camera, so whichever side the user
// orbits to is lit and the part colours stay readable.
scene.add(new HemisphereLight(0xffffff, 0x8a8a8a, 1.6));
const headlight = new DirectionalLight(0xffffff, 1.6);
camera.add(headlight);
headlight.position.set(0.5, 1, 0.5);
scene.add(camera);

const skinMaterial = new MeshStandardMaterial({ color: 0xe0b49a, roughness: 0.65, side: DoubleSide });
const boneMaterial = new LineBasicMaterial({ color: 0x202020 });
const jointMaterial = new PointsMaterial({ color: 0xc0392b, size: 7, sizeAttenuation: false });

const loader = new GLTFLoader();
const cache = new Map(); // frame index -> Promise<Object3D | null>
let manifest = null;
let current = null; // the Object3D in the scene
let index = 0;
let playing = false;

function fitCamera(bounds) {
  const box = new Box3(new Vector3(...bounds[0]), new Vector3(...bounds[1]));
  const center = box.getCenter(new Vector3());
  const radius = Math.max(box.getSize(new Vector3()).length() / 2, 1e-6);
  const distance = (1.05 * radius) / Math.sin((camera.fov * Math.PI) / 360);
  // meshes come in metres, centimetres or millimetres: clip planes follow the size
  camera.near = distance / 100;
  camera.far = distance * 100;
  camera.position.copy(center).add(new Vector3(0.35, 0.25, 1).normalize().multiplyScalar(distance));
  camera.updateProjectionMatrix();
  controls.target.copy(center);
  controls.update();
}

// glTF colours are linear by specification, but halohand (like most tools) writes the
// sRGB values of its part colours into COLOR_0; decoding them as sRGB shows the colours
// that halohand.render.PART_COLORS defines instead of washed-out ones.
function srgbVertexColors(geometry) {
  const src = geometry.getAttribute("color");
  const out = new Float32Array(src.count * 3);
  const c = new Color();
  for (let i = 0; i < src.count; i++) {
    c.setRGB(src.getX(i), src.getY(i), src.getZ(i), SRGBColorSpace);
    out.set([c.r, c.g, c.b], i * 3);
  }
  geometry.setAttribute("color", new BufferAttribute(out, 3));
}

function prepare(root) {
  root.traverse((obj) => {
    if (obj.isMesh) {
      const hasColors = obj.geometry.hasAttribute("color");
      if (hasColors) srgbVertexColors(obj.geometry);
      const textured = obj.material && obj.material.map;
      if (!textured) {
        // glTF's default material is fully metallic (dark without an environment map)
        obj.material = hasColors
          ? new MeshStandardMaterial({ vertexColors: true, roughness: 0.65, side: DoubleSide })
          : skinMaterial.clone();
      }
      obj.userData.surface = true;
      if (!obj.geometry.hasAttribute("normal")) obj.geometry.computeVertexNormals();
    } else if (obj.isLineSegments || obj.isLine) {
      obj.material = boneMaterial;
      obj.userData.skeleton = true;
    } else if (obj.isPoints) {
      obj.material = jointMaterial;
      obj.userData.skeleton = true;
    }
  });
  applyToggles(root);
  return root;
}

function applyToggles(root) {
  const showSkeleton = $("skeleton").checked;
  const xray = $("xray").checked;
  root.traverse((obj) => {
    if (obj.userData.skeleton) {
      obj.visible = showSkeleton;
      obj.renderOrder = 1; // after the transparent surface, so x-ray shows the bones
    }
    if (obj.userData.surface) {
      obj.material.transparent = xray;
      obj.material.opacity = xray ? 0.35 : 1;
      obj.material.depthWrite = !xray;
    }
  });
}

// A plain fetch + parse instead of loader.loadAsync: with loadAsync, headless Chromium
// reported the first frame's request as aborted (net::ERR_ABORTED) although the frame
// loaded, and progress events, the only thing FileLoader adds, are not used here.
async function fetchGlb(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return loader.parseAsync(await response.arrayBuffer(), "");
}

function load(i) {
  if (!cache.has(i)) {
    const frame = manifest.frames[i];
    const promise = frame.url
      ? fetchGlb(frame.url).then((gltf) => prepare(gltf.scene))
      : Promise.resolve(null);
    cache.set(i, promise);
  }
  return cache.get(i);
}

async function show(i) {
  const n = manifest.frames.length;
  index = ((i % n) + n) % n;
  const wanted = index;
  const root = await load(wanted);
  if (wanted !== index) return; // a later request won
  if (current) scene.remove(current);
  current = root;
  if (root) {
    applyToggles(root);
    scene.add(root);
  }
  const frame = manifest.frames[wanted];
  $("name").textContent = frame.name + (frame.triangles ? "" : " (no surface)");
  $("slider").value = String(wanted);
  $("counter").textContent = `${wanted + 1} / ${n}`;
  if (n > 1) load((wanted + 1) % n); // fetch ahead so playback does not stall
}

async function play() {
  playing = !playing;
  $("play").textContent = playing ? "pause" : "play";
  const step = 1000 / manifest.fps;
  while (playing) {
    const started = performance.now();
    await show(index + 1);
    const wait = step - (performance.now() - started);
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

function resize() {
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.floor(w * renderer.getPixelRatio()) || camera.aspect !== w / h) {
    renderer.setSize(w, h, false);
    camera.aspect = w / h;
    camera.updateProjectionMatrix();
  }
}

function animate() {
  resize();
  controls.update();
  renderer.render(scene, camera);
  requestAnimationFrame(animate);
}

async function main() {
  const response = await fetch("/frames.json");
  if (!response.ok) throw new Error(`/frames.json: HTTP ${response.status}`);
  manifest = await response.json();
  const n = manifest.frames.length;
  if (manifest.bounds) fitCamera(manifest.bounds);
  document.title = n > 1 ? `halohand view (${n} frames)` : `halohand view: ${manifest.frames[0].name}`;
  if (n > 1) {
    $("player").hidden = false;
    $("slider").max = String(n - 1);
    $("slider").addEventListener("input", (e) => show(Number(e.target.value)));
    $("play").addEventListener("click", play);
    addEventListener("keydown", (e) => {
      if (e.target.tagName === "INPUT" && e.target.type === "range") return;
      if (e.key === " ") { e.preventDefault(); play(); }
      if (e.key === "ArrowRight") show(index + 1);
      if (e.key === "ArrowLeft") show(index - 1);
    });
  }
  // ?xray=1&skeleton=0&frame=N set the starting view, so a view can be shared as a link
  const params = new URLSearchParams(location.search);
  for (const id of ["skeleton", "xray"]) {
    if (params.has(id)) $(id).checked = params.get(id) === "1";
    $(id).addEventListener("change", () => current && applyToggles(current));
  }
  // the first frame that has a surface, so a sequence starting empty still frames a hand
  const first = Math.max(0, manifest.frames.findIndex((f) => f.triangles > 0));
  await show(params.has("frame") ? Number(params.get("frame")) || 0 : first);
  animate();
  // two frames drawn: the canvas holds the hand before the test (or a user) looks
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      if (document.documentElement.dataset.state !== "error") {
        document.documentElement.dataset.state = "ready";
      }
    }),
  );
}

main().catch((err) => window.halohandError(err && err.message ? err.message : String(err)));
