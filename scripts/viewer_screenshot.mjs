// Opens a halohand viewer page in headless Chromium and saves a screenshot.
//
//   node scripts/viewer_screenshot.mjs URL OUT.png --deps DIR [--chromium PATH]
//
// DIR holds node_modules with puppeteer-core (and @sparticuz/chromium when no --chromium
// is given): `make viewer-install` fills .viewer-test/. Prints one JSON line:
// {"state", "errors", "title", "chromium"}; scripts/test_viewer_headless.py judges it.
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

function parseArgs(argv) {
  const opts = { positional: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--deps") opts.deps = argv[++i];
    else if (argv[i] === "--chromium") opts.chromium = argv[++i];
    else if (argv[i] === "--timeout") opts.timeout = Number(argv[++i]);
    else opts.positional.push(argv[i]);
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const [url, out] = opts.positional;
if (!url || !out || !opts.deps) {
  console.error("usage: viewer_screenshot.mjs URL OUT.png --deps DIR [--chromium PATH]");
  process.exit(2);
}
const timeout = opts.timeout || 90000;

// The npm pieces live in an ignored folder, not beside this script, so resolve them there.
const requireFromDeps = createRequire(join(resolve(opts.deps), "package.json"));
const load = async (name) => (await import(pathToFileURL(requireFromDeps.resolve(name)).href)).default;

// Flags that keep Chromium off the network: this machine reaches only package registries,
// and without them Chromium's background services retry refused connections.
const QUIET = [
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

let executablePath = opts.chromium;
let args;
if (executablePath) {
  // A system Chromium (e.g. Debian's): software WebGL through SwiftShader, no sandbox as
  // the tests may run as root.
  args = [...QUIET, "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"];
} else {
  // @sparticuz/chromium unpacks its bundled headless Chromium (with SwiftShader) to /tmp.
  const chromium = await load("@sparticuz/chromium");
  executablePath = await chromium.executablePath();
  args = [...chromium.args, ...QUIET];
}

const puppeteer = await load("puppeteer-core");
const browser = await puppeteer.launch({
  executablePath,
  args,
  headless: true,
  defaultViewport: { width: 960, height: 720 },
});
const errors = [];
let state = "timeout";
let title = "";
try {
  const page = await browser.newPage();
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("requestfailed", (req) => errors.push(`request failed: ${req.url()} (${req.failure()?.errorText})`));
  page.on("response", (res) => {
    if (res.status() >= 400) errors.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  await page.goto(url, { waitUntil: "load", timeout });
  try {
    await page.waitForFunction(
      () => ["ready", "error"].includes(document.documentElement.dataset.state),
      { timeout },
    );
  } catch {
    errors.push(`page not ready after ${timeout} ms`);
  }
  state = await page.evaluate(() => document.documentElement.dataset.state || "none");
  title = await page.title();
  await page.screenshot({ path: out });
} finally {
  await browser.close();
}
console.log(JSON.stringify({ state, errors, title, chromium: executablePath }));
