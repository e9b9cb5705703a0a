#!/usr/bin/python3
"""The dashboard in a real browser: Debian's headless chromium driven by
python3-selenium and chromium-driver, against the real lowrankd binary on a
real port. Prints TAP.

    ui_browser.py                  (top_srcdir, top_builddir from the env)
    LR_UI_SCREENSHOTS=DIR ...      also saves DIR/dashboard-list.png and
                                   DIR/dashboard-job.png

Checks, in order: / redirects to /ui/; the security headers, content types
and ETags of every static file; the list page updates itself when a job is
submitted elsewhere; the submit form uploads tiny_cnn with its calibration
and lands on the job page; the job page follows the job live over the event
stream while it waits behind a slow job, which is cancelled from a second
tab; the job reaches succeeded and the charts are drawn with one series per
layer and the chosen rank marked; the model downloads through the button
and matches the job's SHA-256; a model whose layer names are HTML shows
them as text (table and chart labels) and runs no script; delete; the state
filter; no console errors. Then a daemon with tokens_file: the page asks
for the token, refuses a wrong one, keeps the right one in sessionStorage,
sends it as a header only (never in a URL), and a job goes through.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# chromedriver takes only canonical paths for file inputs.
SRC = os.path.realpath(os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.realpath(os.environ.get("top_builddir") or SRC)
DATA = os.path.join(SRC, "tests", "data")
JOB_WAIT = float(os.environ.get("LR_TEST_JOB_WAIT", "900"))
SHOTS = os.environ.get("LR_UI_SCREENSHOTS", "")
HTML_NAME = '<img src=x onerror="window.__xss=1">&amp;<b>conv</b>'

n_tests = 0
n_failed = 0


def ok(cond, desc):
    global n_tests, n_failed
    n_tests += 1
    if not cond:
        n_failed += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n_tests, desc), flush=True)
    return cond


def diag(msg):
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


def bail(msg):
    print("Bail out! " + msg, flush=True)
    sys.exit(1)


def wait_for(seconds, fn, step=0.2):
    """Calls fn until it returns a true value (returned) or time runs out
    (None). A loaded machine is slow, not wrong: never a fixed sleep."""
    end = time.time() + seconds
    while True:
        try:
            v = fn()
        except Exception:  # noqa: BLE001 - a page mid-navigation
            v = None
        if v:
            return v
        if time.time() > end:
            return None
        time.sleep(step)


# --------------------------------------------------------------------------
# The daemon


class Daemon:
    def __init__(self, tmp, name, *flags):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.log_path = os.path.join(self.dir, "log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "lowrankd"), "--state-dir", os.path.join(self.dir, "var"),
             "--listen", "127.0.0.1:0", "--workers", "1", *flags],
            stdout=subprocess.DEVNULL, stderr=self.log)
        port = wait_for(60, self._port)
        if not port:
            bail("lowrankd did not start: " + open(self.log_path).read()[-2000:])
        self.url = "http://127.0.0.1:%d" % port
        if not wait_for(60, lambda: self.status("/readyz") == 200):
            bail("lowrankd is not ready")

    def _port(self):
        with open(self.log_path) as f:
            for line in f:
                if '"msg":"listening"' in line:
                    return int(json.loads(line)["port"])
        if self.proc.poll() is not None:
            bail("lowrankd exited: " + open(self.log_path).read()[-2000:])
        return None

    def request(self, path, method="GET", headers=None, data=None):
        req = urllib.request.Request(self.url + path, method=method, headers=headers or {}, data=data)
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def status(self, path, headers=None):
        try:
            return self.request(path, headers=headers)[0]
        except OSError:
            return None

    def job(self, jid, headers=None):
        s, _, body = self.request("/v1/jobs/" + jid, headers=headers)
        return json.loads(body) if s == 200 else None

    def submit(self, model, calib, spec, token=None):
        cmd = ["curl", "-s", "-F", "model=@" + model, "-F", "calibration=@" + calib,
               "-F", "spec=" + json.dumps(spec), self.url + "/v1/jobs"]
        if token:
            cmd[1:1] = ["-H", "Authorization: Bearer " + token]
        out = subprocess.run(cmd, capture_output=True, check=False, timeout=120).stdout
        return json.loads(out)["id"]

    def wait_state(self, jid, states, headers=None):
        return wait_for(JOB_WAIT, lambda: (self.job(jid, headers) or {}).get("state") in states, 0.5)

    def stop(self):
        """SIGTERM; checks the exit status and that no sanitizer spoke."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        log = open(self.log_path, errors="replace").read()
        bad = re.search(r"(AddressSanitizer|LeakSanitizer|runtime error).*", log)
        ok(rc == 0 and not bad, "lowrankd (%s) stops cleanly on SIGTERM: exit %d%s"
           % (os.path.basename(self.dir), rc, ", " + bad.group(0) if bad else ""))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# --------------------------------------------------------------------------
# The browser


def browser(download_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.add_experimental_option("prefs", {"download.default_directory": download_dir,
                                           "download.prompt_for_download": False})
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    d = webdriver.Chrome(service=service, options=opts)
    d.execute_cdp_cmd("Browser.setDownloadBehavior",
                      {"behavior": "allow", "downloadPath": download_dir, "eventsEnabled": True})
    return d


def console_errors(d, allow=()):
    """SEVERE entries of the browser log since the last call, less those
    matching a regex in `allow`."""
    out = []
    for e in d.get_log("browser"):
        if e.get("level") == "SEVERE" and not any(re.search(a, e.get("message", "")) for a in allow):
            out.append(e.get("message", ""))
    return out


def js(d, script, *args):
    return d.execute_script(script, *args)


def text(d, id_):
    return js(d, "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;", id_)


def visible(d, id_):
    return js(d, "const e = document.getElementById(arguments[0]); return !!e && !e.closest('[hidden]');", id_)


def mark(d):
    """Sets a marker that survives only while the page is not reloaded."""
    js(d, "window.__lrMark = 42;")


def marked(d):
    return js(d, "return window.__lrMark === 42;")


def screenshot(d, name):
    """The whole page as DIR/name (LR_UI_SCREENSHOTS)."""
    if not SHOTS:
        return
    import base64
    w = int(js(d, "return document.documentElement.clientWidth;"))
    h = min(int(js(d, "return Math.ceil(document.documentElement.scrollHeight);")), 6000)
    shot = d.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
    os.makedirs(SHOTS, exist_ok=True)
    path = os.path.join(SHOTS, name)
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    diag("screenshot: " + path)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wait_download(ddir, suffix, seconds=60):
    def done():
        names = [n for n in os.listdir(ddir) if n.endswith(suffix)]
        partial = [n for n in os.listdir(ddir) if n.endswith(".crdownload")]
        return names[0] if names and not partial else None
    name = wait_for(seconds, done)
    return os.path.join(ddir, name) if name else None


def perf_names(d):
    return js(d, "return performance.getEntriesByType('resource').map(e => e.name);") or []


# --------------------------------------------------------------------------
# The checks


def check_headers(dm):
    s, h, _ = dm.request("/")
    ok(s == 302 and h.get("Location") == "/ui/", "GET / -> 302 Location: /ui/ (got %s %s)" % (s, h.get("Location")))
    s, h, _ = dm.request("/ui")
    ok(s == 302 and h.get("Location") == "/ui/", "GET /ui -> 302 to /ui/")
    want = {"/ui/": "text/html; charset=utf-8", "/ui/app.js": "text/javascript; charset=utf-8",
            "/ui/app.css": "text/css; charset=utf-8", "/ui/chart.min.js": "text/javascript; charset=utf-8",
            "/ui/favicon.svg": "image/svg+xml", "/ui/jobs/" + "0" * 32: "text/html; charset=utf-8"}
    for path, ctype in want.items():
        s, h, body = dm.request(path)
        csp = h.get("Content-Security-Policy", "")
        ok(s == 200 and h.get("Content-Type") == ctype and len(body) > 0,
           "%s -> 200 %s" % (path, ctype))
        ok("default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
           and "unsafe-inline" not in csp and "style-src 'self'" in csp,
           "%s: strict CSP (self only, no inline, no framing)" % path)
        ok(h.get("X-Content-Type-Options") == "nosniff", "%s: X-Content-Type-Options: nosniff" % path)
        etag = h.get("ETag", "")
        s2, h2, b2 = dm.request(path, headers={"If-None-Match": etag})
        ok(re.fullmatch(r'"[0-9a-f]{32}"', etag) is not None and s2 == 304 and b2 == b""
           and h2.get("ETag") == etag and h.get("Cache-Control") == "no-cache",
           "%s: ETag %s, If-None-Match -> 304, Cache-Control: no-cache" % (path, etag))
    s, _, body = dm.request("/ui/chart.min.js")
    ok(b"Chart.js v" in body[:200], "chart.min.js is Chart.js (%s)" % body[:40].decode("latin1").split("\n")[1:2])
    ok(dm.request("/ui/jobs/not-an-id")[0] == 404 and dm.request("/ui/nope.js")[0] == 404,
       "unknown /ui paths and malformed job ids -> 404")
    ok(dm.request("/ui/", method="POST", data=b"")[0] == 405, "POST /ui/ -> 405")
    doc = dm.request("/v1/openapi.yaml")[2].decode()
    ok(all("\n  %s:\n" % r in doc for r in ("/", "/ui/", "/ui/jobs/{id}", "/ui/{asset}")) and "energy_curve:" in doc,
       "/v1/openapi.yaml documents the /ui routes and the report's energy_curve")
    s, h, body = dm.request("/ui/")
    ok(not re.search(rb"<script(?![^>]*\bsrc=)", body) and b" style=" not in body and b"<style" not in body
       and not re.search(rb"\son[a-z]+=", body) and not re.search(rb"(src|href)=\"(https?:)?//", body),
       "index.html: no inline script, style or handler, nothing from other hosts")


def make_html_model(path):
    import onnx
    m = onnx.load(os.path.join(DATA, "tiny_cnn.onnx"))
    names = []
    for i, node in enumerate(m.graph.node):
        if node.op_type == "Conv":
            node.name = HTML_NAME + "<i>%d</i></td><script>window.__xss=2</script>" % i
            names.append(node.name)
    onnx.save(m, path)
    return names


def on_signal(signum, frame):
    raise SystemExit("signal %d" % signum)  # so that the finally clauses stop what was started


def main():
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        import selenium  # noqa: F401
    except ImportError:
        bail("python3-selenium is missing: scripts/install-deps.sh test installs it")
    for tool in ("chromium", "chromedriver"):
        if not shutil.which(tool):
            bail(tool + " is missing: scripts/install-deps.sh test installs it")
    tmp = tempfile.mkdtemp(prefix="lrui.")
    ddir = os.path.join(tmp, "downloads")
    os.makedirs(ddir)
    daemons = []
    d = None
    try:
        dm = Daemon(tmp, "open")
        daemons.append(dm)
        check_headers(dm)
        d = browser(ddir)
        for part in (lambda: run_open(d, dm, tmp, ddir), lambda: run_tokens(d, tmp, ddir)):
            try:
                part()
            except Exception as e:  # noqa: BLE001 - a failed step, not a crash
                import traceback
                diag(traceback.format_exc())
                ok(False, "the browser steps ran to the end (%s: %s)" % (type(e).__name__, str(e).splitlines()[0]))
    finally:
        if d is not None:
            d.quit()
        for dm in daemons:
            dm.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % n_tests)
    return 1 if n_failed else 0


def run_open(d, dm, tmp, ddir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d.get(dm.url + "/")
    ok(wait_for(20, lambda: d.current_url == dm.url + "/ui/" and visible(d, "list-view")),
       "the browser follows / to /ui/ and shows the job list")
    ok(wait_for(20, lambda: visible(d, "jobs-empty")), "an empty store lists no jobs")
    ok(not visible(d, "login"), "no token asked for when the server has no tokens_file")
    mark(d)

    # A slow job holds the only worker, so the form's job waits behind it
    # and its page has something to follow live. Measuring every rank of
    # every layer at batch 256 takes a minute or more; the test cancels it
    # within seconds (measuring checks the cancel flag between timings).
    calib = os.path.join(tmp, "c64.npy")
    subprocess.run([sys.executable, os.path.join(DATA, "fmnist.py"), "calib", "64", calib], check=True)
    slow = dm.submit(os.path.join(DATA, "fmnist_vgg.onnx"), calib,
                     {"speedup": 1.5, "objective": "time", "deploy_batch": 256, "rank_multiple": 1})
    ok(wait_for(20, lambda: js(d, "return !!document.querySelector('#jobs tr[data-id=\"%s\"]');" % slow))
       and marked(d), "the list shows a job submitted elsewhere without a reload (live)")

    # The form: files, options, upload.
    d.find_element(By.ID, "f-model").send_keys(os.path.join(DATA, "tiny_cnn.onnx"))
    d.find_element(By.ID, "f-calibration").send_keys(os.path.join(DATA, "tiny_input.npy"))
    d.find_element(By.ID, "spec-speedup").send_keys("2")
    Select(d.find_element(By.ID, "spec-objective")).select_by_value("flops")
    helps = js(d, "return [...document.querySelectorAll('#spec-main .field, #spec-more .field')].map(f => "
                  "[f.querySelector('label').textContent, f.querySelector('.hint').textContent.length, "
                  "(f.querySelector('input, textarea') || {}).placeholder || f.querySelector('option').textContent]);")
    ok(len(helps) >= 10 and all(h[1] > 20 and h[2] for h in helps),
       "the form shows %d spec options, each with its default and help" % len(helps))
    preview = json.loads(text(d, "spec-preview"))
    ok(preview == {"speedup": 2, "objective": "flops"}, "the spec preview is what will be sent: %s" % preview)
    d.find_element(By.ID, "submit-button").click()
    jid = wait_for(60, lambda: (re.search(r"/ui/jobs/([0-9a-f]{32})$", d.current_url) or [None, None])[1])
    ok(jid is not None, "submitting the form lands on the new job's page (%s)" % jid)
    if jid is None:
        return
    job = dm.job(jid)
    ok(job is not None and job["spec"].get("speedup") == 2 and job["spec"].get("objective") == "flops",
       "the job was created with the form's spec")
    mark(d)
    seen = set()

    def state_is(*want):
        s = text(d, "job-state")
        seen.add(s)
        return s in want
    ok(wait_for(30, lambda: state_is("queued") and visible(d, "job-progress")),
       "the job page shows the job queued behind the slow one")
    ok(wait_for(30, lambda: text(d, "prog-live") == "· live"),
       "the job page has its event stream open (fetch of /v1/jobs/{id}/events)")

    # Cancel the slow job from a second tab.
    first = d.current_window_handle
    d.switch_to.new_window("tab")
    d.get(dm.url + "/ui/jobs/" + slow)
    running = wait_for(JOB_WAIT, lambda: text(d, "job-state") in ("running", "succeeded", "failed", "canceled")) \
        and text(d, "job-state") == "running" and visible(d, "btn-cancel")
    ok(running, "the slow job's page shows it running with a Cancel button (%s)" % text(d, "job-state"))
    if running:
        ok(wait_for(60, lambda: text(d, "prog-live") == "· live" and re.search(r"\d+%", text(d, "prog-pct"))
                    and text(d, "prog-stage") not in ("", "starting")),
           "live progress: %r %r %r" % (text(d, "prog-stage"), text(d, "prog-layer"), text(d, "prog-pct")))
        d.find_element(By.ID, "btn-cancel").click()
        ok(wait_for(JOB_WAIT, lambda: text(d, "job-state") == "canceled" and visible(d, "job-error")),
           "Cancel ends the slow job canceled, and the page says so")
        ok(not visible(d, "btn-cancel") and visible(d, "btn-delete") and not visible(d, "btn-model"),
           "a canceled job offers Delete, not Cancel or downloads")
    d.close()
    d.switch_to.window(first)

    ok(wait_for(JOB_WAIT, lambda: state_is("succeeded")), "the form's job reaches succeeded")
    ok(marked(d) and "queued" in seen and "succeeded" in seen,
       "the job page followed queued -> succeeded live, without a reload (seen: %s)" % sorted(seen))
    ok(wait_for(60, lambda: js(d, "return document.body.dataset.charts === 'ready';")), "the charts are drawn")
    rep = json.loads(dm.request("/v1/jobs/%s/report" % jid)[2])
    curved = [l for l in rep["layers"] if "energy_curve" in l]
    info = js(d, """
        const c = Chart.getChart(document.getElementById('chart-energy'));
        return c.data.datasets.map(ds => ({label: ds.label, n: ds.data.length,
          marked: ds.data.filter((p, i) => ds.pointRadius[i] > 0).map(p => p.x)}));""")
    ok(len(curved) >= 3 and [i["label"] for i in info] == [l["name"] for l in curved],
       "energy chart: one series per layer with a curve (%d: %s)" % (len(info), [i["label"] for i in info]))
    ok(all(i["marked"] == [l["rank"]] and i["n"] == len(l["energy_curve"]["rank"]) for i, l in zip(info, curved)),
       "each series marks exactly its chosen rank: %s" % [i["marked"] for i in info])
    for cid in ("chart-budget", "chart-speedup", "chart-fidelity", "chart-error"):
        drawn = js(d, "const c = Chart.getChart(document.getElementById(arguments[0]));"
                      "return c ? [c.data.datasets.length, c.data.labels.length, c.chartArea.width] : null;", cid)
        ok(drawn is not None and drawn[0] >= 1 and drawn[1] >= 1 and drawn[2] > 50,
           "%s drawn (datasets, labels, width: %s)" % (cid, drawn))
    budget_labels = js(d, "return Chart.getChart(document.getElementById('chart-budget')).data.labels;")
    ok(budget_labels == [l["name"] for l in rep["layers"]], "budget chart: one bar group per layer")
    sp = js(d, "const c = Chart.getChart(document.getElementById('chart-speedup'));"
               "return {labels: c.data.labels, data: c.data.datasets[0].data};")
    ok(sp["labels"][:2] == ["requested", "FLOPs"] and abs(sp["data"][0] - 2) < 1e-9
       and abs(sp["data"][1] - rep["theoretical_speedup"]) < 1e-9
       and any(lbl.startswith("measured") for lbl in sp["labels"]),
       "speedup chart: requested 2, FLOPs %.3f, measured (%s)" % (rep["theoretical_speedup"], sp["labels"]))
    rows = js(d, "return [...document.querySelectorAll('#layers tbody tr')].map(r => [...r.cells].map(c => c.textContent));")
    ok(len(rows) == len(rep["layers"]) and all(r[1] == l["name"] for r, l in zip(rows, rep["layers"])),
       "the layer table has one row per report layer")
    dec = [(r, l) for r, l in zip(rows, rep["layers"]) if "rank" in l]
    ok(dec and all(r[5] == str(l["rank"]) and r[6] == l["solution"] and r[7] == "%.2f%%" % (100 * l["energy"])
                   for r, l in dec),
       "rank, scheme and energy kept match the report")
    skipped = [(r, l) for r, l in zip(rows, rep["layers"]) if "rank" not in l]
    ok(skipped and all(r[5] == "–" and r[14].startswith(l["skipped"]) for r, l in skipped),
       "a skipped layer shows – for missing fields and its reason")
    screenshot(d, "dashboard-job.png")

    # Download through the button (fetch + blob).
    d.find_element(By.ID, "btn-model").click()
    path = wait_download(ddir, ".onnx")
    job = dm.job(jid)
    ok(path is not None and sha256_file(path) == job["response"]["model_sha256"],
       "Download model saves %s with the job's SHA-256" % (os.path.basename(path) if path else None))
    ok(not console_errors(d), "no console errors so far: %s" % console_errors(d))

    # A model whose layer names are HTML.
    evil = os.path.join(tmp, "evil.onnx")
    names = make_html_model(evil)
    eid = dm.submit(evil, os.path.join(DATA, "tiny_input.npy"), {"speedup": 2, "objective": "flops"})
    ok(dm.wait_state(eid, ("succeeded",)), "the HTML-named model compresses")
    d.get(dm.url + "/ui/jobs/" + eid)
    ok(wait_for(60, lambda: js(d, "return document.body.dataset.charts === 'ready';")), "its page draws")
    cells = js(d, "return [...document.querySelectorAll('#layers tbody td.name')].map(c => c.textContent);")
    ok(all(n in cells for n in names), "layer names containing HTML are shown as text, verbatim")
    ok(js(d, "return document.querySelectorAll('main img, main b, main i, main script:not([src])').length;") == 0
       and js(d, "return document.querySelectorAll('#layers tbody tr')[1].cells.length;") == 15,
       "no element was created from them (table intact, no img/b/i/script)")
    labels = js(d, "return Chart.getChart(document.getElementById('chart-energy')).data.datasets.map(d => d.label);")
    ok(labels and all(l in names for l in labels), "chart legends carry the same raw names (drawn on canvas)")
    ok(js(d, "return window.__xss === undefined;"), "no script from a layer name ran")

    # Delete, twice-click.
    d.find_element(By.ID, "btn-delete").click()
    ok(text(d, "btn-delete") == "Click again to delete", "Delete asks for a second click")
    d.find_element(By.ID, "btn-delete").click()
    ok(wait_for(30, lambda: d.current_url.endswith("/ui/")) and dm.status("/v1/jobs/" + eid) == 404,
       "the second click deletes the job and returns to the list")

    # The list, its filter, the screenshot.
    ok(wait_for(30, lambda: js(d, "return document.querySelectorAll('#jobs tbody tr').length;") == 2),
       "the list shows the two remaining jobs, newest first")
    ids = js(d, "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.id);")
    ok(ids == [jid, slow], "newest first: %s" % ids)
    screenshot(d, "dashboard-list.png")
    Select(d.find_element(By.ID, "state-filter")).select_by_value("succeeded")
    ok(wait_for(20, lambda: js(d, "return [...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.id);") == [jid])
       and d.current_url.endswith("/ui/?state=succeeded"),
       "the state filter shows only succeeded jobs, and the URL keeps it")
    ok(not console_errors(d), "no console errors")


def run_tokens(d, tmp, ddir):
    from selenium.webdriver.common.by import By

    secret = "s3cret-token-for-the-ui-test"
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write("alice %s\n" % hashlib.sha256(secret.encode()).hexdigest())
    dm = Daemon(tmp, "auth", "--tokens-file", tokens)
    try:
        console_errors(d)  # drop the first daemon's
        d.get(dm.url + "/ui/")
        ok(wait_for(20, lambda: visible(d, "login") and not visible(d, "list-view")),
           "with tokens_file the page asks for a token and shows no jobs")
        d.find_element(By.ID, "token").send_keys("wrong-token")
        d.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        ok(wait_for(20, lambda: visible(d, "login-error") and "refused" in text(d, "login-error")),
           "a wrong token is refused: %r" % text(d, "login-error"))
        ok(js(d, "return sessionStorage.getItem('lowrankd.token');") is None, "a refused token is not kept")
        d.find_element(By.ID, "token").send_keys(secret)
        d.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        ok(wait_for(20, lambda: visible(d, "list-view") and not visible(d, "login")), "the right token opens the list")
        ok(js(d, "return sessionStorage.getItem('lowrankd.token');") == secret
           and js(d, "return localStorage.length;") == 0 and not d.get_cookies(),
           "the token is in sessionStorage only (no localStorage, no cookie)")
        d.find_element(By.ID, "f-model").send_keys(os.path.join(DATA, "tiny_cnn.onnx"))
        d.find_element(By.ID, "f-calibration").send_keys(os.path.join(DATA, "tiny_input.npy"))
        d.find_element(By.ID, "spec-speedup").send_keys("2")
        d.find_element(By.ID, "submit-button").click()
        jid = wait_for(60, lambda: (re.search(r"/ui/jobs/([0-9a-f]{32})$", d.current_url) or [None, None])[1])
        ok(jid is not None, "the form submits with the token (XHR Authorization header)")
        if jid is None:
            return
        ok(wait_for(JOB_WAIT, lambda: text(d, "job-state") == "succeeded"), "the job page follows it to succeeded")
        ok(wait_for(60, lambda: js(d, "return document.body.dataset.charts === 'ready';")),
           "report and charts load with the token")
        d.find_element(By.ID, "btn-report").click()
        path = wait_download(ddir, ".json")
        ok(path is not None and "layers" in json.load(open(path)), "Download report works with the token")
        urls = perf_names(d) + [d.current_url]
        ok(not any(secret in u or "access_token" in u for u in urls),
           "the token never appears in a URL (%d requests checked)" % len(urls))
        ok(secret not in open(dm.log_path).read(), "nor in the daemon's log")
        errs = console_errors(d, allow=(r"status of 401",))
        ok(not errs, "no console errors but the expected 401 of the wrong token: %s" % errs)
        d.find_element(By.ID, "forget-token").click()
        ok(wait_for(20, lambda: visible(d, "login")) and js(d, "return sessionStorage.length;") == 0,
           "Forget token clears it and asks again")
    finally:
        dm.stop()


if __name__ == "__main__":
    sys.exit(main())
