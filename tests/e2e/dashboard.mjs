// dashboard.mjs - the dashboard in a real browser (Debian's chromium, driven
// by playwright-core): sign in through the page, see who you are and the
// organisation's devices, sign out. One JSON line per step on stdout.
//
// Usage: node dashboard.mjs URL USERNAME PASSWORD SCREENSHOT_PATH
// CHROMIUM names the browser (default /usr/bin/chromium).
import { chromium } from 'playwright-core';
import { out, fail } from './lib.mjs';

const [url, username, password, shot] = process.argv.slice(2);
if (!url || !username || !password || !shot) fail('usage', 'dashboard.mjs URL USERNAME PASSWORD SCREENSHOT');

let browser;
let step = 'launch';
try {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage({ viewport: { width: 1000, height: 600 } });
  // Anything the page's policy refuses, or any script error, shows here.
  const problems = [];
  // The 401s the page expects (not signed in yet, a wrong password) are not problems.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));

  step = 'open';
  await page.goto(url, { waitUntil: 'networkidle' });
  await page.locator('#signin').waitFor({ state: 'visible', timeout: 10000 });
  out({ step, signin_visible: true });

  step = 'wrong-password';
  await page.fill('#username', username);
  await page.fill('#password', password + '-not');
  await page.click('#signin-form button[type=submit]');
  await page.locator('#signin-error').waitFor({ state: 'visible', timeout: 10000 });
  out({ step, error: await page.textContent('#signin-error') });

  step = 'signin';
  await page.fill('#password', password);
  await page.click('#signin-form button[type=submit]');
  await page.locator('#devices tbody tr').first().waitFor({ state: 'visible', timeout: 10000 });
  const who = await page.textContent('#who-text');
  const devices = await page.$$eval('#devices tbody tr', (rows) => rows.map((r) => r.dataset.device));
  const cookies = await page.context().cookies();
  const c = cookies.find((k) => k.name === 'kvmgate_session');
  out({ step, who, devices, cookie: c ? { httpOnly: c.httpOnly, sameSite: c.sameSite } : null,
        script_sees_cookie: await page.evaluate(() => document.cookie.includes('kvmgate_session')) });
  await page.screenshot({ path: shot, fullPage: true });

  step = 'reload';
  await page.reload({ waitUntil: 'networkidle' });
  await page.locator('#devices tbody tr').first().waitFor({ state: 'visible', timeout: 10000 });
  out({ step, still_signed_in: await page.isVisible('#app') });

  step = 'signout';
  await page.click('#signout');
  await page.locator('#signin').waitFor({ state: 'visible', timeout: 10000 });
  const after = (await page.context().cookies()).find((k) => k.name === 'kvmgate_session');
  out({ step, signin_visible: true, cookie_left: Boolean(after && after.value) });

  step = 'done';
  out({ step, problems });
  await browser.close();
} catch (e) {
  if (browser) await browser.close().catch(() => {});
  fail(step, e);
}
