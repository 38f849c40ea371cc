// Drives the dashboard at /admin/gui in headless Debian Chromium: uploads a function through the file picker,
// invokes it, checks that the result and the log row appear, uploads a second version and rolls back to the
// first from the version history, changes its settings (a timeout, an env variable, a secret) through the
// form, and discards a dead letter; then sees calls made with curl in the live tail, opens a record, reads the
// charts and filters the logs, and saves a screenshot of the whole page. Exits non-zero on any failure.
// usage: node dashboard.mjs URL USER PASSWORD WORK_DIR SCREENSHOT_PNG
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const [url, user, password, workDir, screenshot] = process.argv.slice(2);
const code = join(workDir, "mul.py");
writeFileSync(code, "def main(a, b):\n    print('multiplying')\n    return a * b\n");

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const context = await browser.newContext({ httpCredentials: { username: user, password } });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("dialog", (dialog) => dialog.accept());  // the rollback's confirmation

  await page.goto(url + "/admin/gui");
  await page.getByText("No functions yet").waitFor();

  // Upload through the file picker; the name comes from the file.
  await page.setInputFiles("#upload-code", code);
  await page.click("#upload-button");
  await page.locator("#message.ok", { hasText: "Function 'mul' uploaded" }).waitFor();
  await page.locator("#functions tr[data-name='mul']").waitFor();

  // Invoke with JSON args and read the record.
  await page.selectOption("#invoke-function", "mul");
  await page.fill("#invoke-args", "[6, 7]");
  await page.click("#invoke-button");
  await page.locator("#invoke-result.ok").waitFor();
  const record = JSON.parse(await page.textContent("#invoke-result"));
  if (record.result !== 42 || record.status !== "success") throw new Error("bad record " + JSON.stringify(record));

  // The log row of that invocation.
  const row = page.locator("#logs tbody tr", { hasText: record.request_id });
  await row.waitFor();
  const cells = await row.locator("td").allTextContents();
  if (cells[1] !== "success" || cells[2] !== "[6,7]" || cells[3] !== "42" || !cells[5].includes("multiplying")) {
    throw new Error("bad log row " + JSON.stringify(cells));
  }

  // A bad argument list is reported without a request.
  await page.fill("#invoke-args", "[6,");
  await page.click("#invoke-button");
  await page.locator("#invoke-result.bad", { hasText: "not valid JSON" }).waitFor();

  // Versions: a second upload makes v2; the history rolls back to v1, which the next call runs.
  writeFileSync(code, "def main(a, b):\n    return -a * b\n");
  await page.setInputFiles("#upload-code", code);
  await page.click("#upload-button");
  await page.locator("#message.ok", { hasText: "(version 2)" }).waitFor();
  await page.locator("#functions tr[data-name='mul'] button", { hasText: "Versions" }).click();
  await page.locator("#versions tr[data-version='2']", { hasText: "current" }).waitFor();
  await page.locator("#versions tr[data-version='1'] button", { hasText: "Roll back" }).click();
  await page.locator("#message.ok", { hasText: "rolled back to version 1" }).waitFor();
  await page.locator("#versions tr[data-version='1']", { hasText: "current" }).waitFor();
  await page.fill("#invoke-args", "[6, 7]");
  await page.click("#invoke-button");
  await page.locator("#invoke-result.ok").waitFor();
  const rolled = JSON.parse(await page.textContent("#invoke-result"));
  if (rolled.result !== 42 || rolled.version !== 1) throw new Error("bad record after rollback " + JSON.stringify(rolled));

  // Settings: the form shows the defaults; a timeout, an env variable and a secret are saved, and the secret
  // comes back by name only.
  await page.locator("#functions tr[data-name='mul'] button", { hasText: "Settings" }).click();
  await page.locator("#settings-function", { hasText: "mul" }).waitFor();
  if (await page.inputValue("#settings-timeout") !== "") throw new Error("the timeout should follow the default");
  await page.fill("#settings-timeout", "2.5");
  await page.fill("#settings-env", "MODE=fast");
  await page.fill("#settings-secret-name", "API_TOKEN");
  await page.fill("#settings-secret-value", "hunter2");
  await page.click("#settings-button");
  await page.locator("#message.ok", { hasText: "Saved the settings of mul" }).waitFor();
  await page.locator("#settings-secrets li", { hasText: "API_TOKEN" }).waitFor();
  const saved = await page.evaluate(async () => (await fetch("/admin/functions/mul/settings")).json());
  if (saved.timeout !== 2.5 || saved.env.MODE !== "fast" || saved.secrets.join() !== "API_TOKEN" ||
      (await page.content()).includes("hunter2")) {
    throw new Error("bad settings " + JSON.stringify(saved));
  }
  // Emptying the timeout returns it to the server's default; removing the secret removes it.
  await page.fill("#settings-timeout", "");
  await page.locator("#settings-secrets li button", { hasText: "Remove" }).click();
  await page.evaluate(() => { document.getElementById("message").textContent = ""; });  // the first save's
  await page.click("#settings-button");
  await page.locator("#message.ok", { hasText: "Saved the settings of mul" }).waitFor();
  const reset = await page.evaluate(async () => (await fetch("/admin/functions/mul/settings")).json());
  if (!reset.defaults.includes("timeout") || reset.secrets.length !== 0) {
    throw new Error("bad reset " + JSON.stringify(reset));
  }

  // An asynchronous call that fails its only attempt shows among the dead letters, and is discarded there.
  const deadId = await page.evaluate(async () => {
    const json = { "Content-Type": "application/json" };
    await fetch("/admin/upload", { method: "POST", headers: json, body: JSON.stringify({
      name: "broken", code_b64: btoa("def main():\n    raise RuntimeError('nope')\n"), settings: { max_attempts: 1 } }) });
    const accepted = await (await fetch("/function/broken", { method: "POST", headers: { ...json, "X-Faas-Async": "true" },
                                                              body: "{}" })).json();
    for (let i = 0; i < 100; i++) {
      if ((await (await fetch("/admin/invocations/" + accepted.id)).json()).status === "dead") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await loadDeadLetters();
    return accepted.id;
  });
  const deadRow = page.locator(`#dead-letters tr[data-id='${deadId}']`, { hasText: "nope" });
  await deadRow.waitFor();
  await deadRow.locator("button", { hasText: "Discard" }).click();
  await deadRow.waitFor({ state: "detached" });

  // The live tail shows calls made from elsewhere (curl) as they commit; a click opens the whole record.
  await page.locator("#live-state", { hasText: "following" }).waitFor();
  await page.evaluate(() => fetch("/admin/upload", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: "echo", code_b64: btoa("def main(x):\n    print('echoing', x)\n    return x\n") }) }));
  for (let i = 0; i < 3; i++) {
    execFileSync("curl", ["-sf", "-u", `${user}:${password}`, "-H", "Content-Type: application/json",
                          "-d", JSON.stringify({ args: [i], request_id: `curl-${i}` }), url + "/function/echo"]);
  }
  const liveRow = page.locator("#live tbody tr", { hasText: "curl-2" });
  await liveRow.waitFor();
  await liveRow.click();
  await page.locator("#record-details", { hasText: "echoing 2" }).waitFor();
  await page.locator("#record-fields dd", { hasText: "curl-2" }).waitFor();

  // The charts of the last hour, drawn from the engine's counts of those calls.
  await page.evaluate(() => loadActivity());
  await page.selectOption("#activity-function", "echo");  // redraws, asynchronously: wait for echo's summary
  await page.locator("#activity-summary", { hasText: "echo: 3 calls, 0 errors" }).waitFor();
  const calls = await page.locator("#chart-calls rect[fill='#2557d6']").evaluateAll(
      (bars) => bars.reduce((sum, bar) => sum + Number(bar.dataset.value), 0));
  if (calls !== 3) throw new Error(`the calls chart shows ${calls} calls of echo, not 3`);
  if (await page.locator("#chart-latency circle").count() === 0) throw new Error("no latency points");

  // The logs' filters: by request id, then by status.
  await page.evaluate(() => loadFunctions());
  await page.locator("#functions tr[data-name='echo'] button", { hasText: "Logs" }).click();
  await page.locator("#logs tbody tr").nth(2).waitFor();
  await page.fill("#filter-request", "curl-1");
  await page.waitForFunction(() => document.querySelectorAll("#logs tbody tr").length === 1);
  await page.locator("#logs tbody tr", { hasText: "curl-1" }).waitFor();
  await page.selectOption("#filter-status", "error");
  await page.locator("#no-logs", { hasText: "No record matches" }).waitFor();
  await page.selectOption("#filter-status", "");
  await page.fill("#filter-request", "");
  await page.locator("#logs tbody tr").nth(2).waitFor();

  await page.screenshot({ path: screenshot, fullPage: true });

  // Status shows the invocation.
  await page.locator("#status dd", { hasText: "errors" }).waitFor();
  // The nodes table lists this server, alive.
  await page.locator("#nodes tbody tr", { hasText: "(this server)" }).locator("td", { hasText: "alive" }).waitFor();
  if (problems.length) throw new Error(problems.join("\n"));
  console.log("dashboard: upload, invoke, result, log row, rollback, settings, dead letters, live tail, record, " +
              "charts and filters seen; screenshot in " + screenshot);
} finally {
  await browser.close();
}
