// Drives the dashboard at /admin/gui in headless Debian Chromium: uploads a function through the file picker,
// invokes it, checks that the result and the log row appear, uploads a second version and rolls back to the
// first from the version history, changes its settings (a timeout, an env variable, a secret) through the
// form, and discards a dead letter. Exits non-zero on any failure.
// usage: node dashboard.mjs URL USER PASSWORD WORK_DIR
import { chromium } from "playwright-core";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const [url, user, password, workDir] = process.argv.slice(2);
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

  // Status shows the invocation.
  await page.locator("#status dd", { hasText: "errors" }).waitFor();
  if (problems.length) throw new Error(problems.join("\n"));
  console.log("dashboard: upload, invoke, result, log row, rollback, settings and dead letters seen");
} finally {
  await browser.close();
}
