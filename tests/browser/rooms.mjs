// Two people in real Chromium (Debian's, with fake microphone and camera) use the `/rooms/` page
// of the server at <url>: both join the public room <room name> as guests from the list, each
// must receive the other's audio, Bob must see Alice speaking, a chat message from Alice must
// reach Bob, and Alice's mute must show on Bob's page. Then Alice creates a private room from the
// page: Bob does not see it listed, and joins it by its link. Prints one JSON line of what
// happened (tests/rooms_browser.rs checks it); every step is tried, so a failure says which ones
// worked. With ROOMS_SCREENSHOTS set to a directory, each page's last state is saved there as a
// PNG (to look at).
//
//   node tests/browser/rooms.mjs http://127.0.0.1:3001 "Room name"
import { chromium } from 'playwright-core';

const [base, roomName] = process.argv.slice(2);
const screenshots = process.env.ROOMS_SCREENSHOTS;
if (!base || !roomName) {
  console.error('usage: node rooms.mjs <server url> <room name>');
  process.exit(2);
}
/** One step's bound (a join, media flowing, a message), and the whole run's (tests/rooms_browser.rs
 *  waits a little longer). Generous: CI runs this beside the rest of the suite on two cores. */
const STEP_MS = 30_000;
const RUN_MS = 200_000;
const CHAT = 'hello from Alice';
const PRIVATE = 'Private room';

const result = {
  joined: [false, false],
  audioBytesReceived: [0, 0],
  chatReceived: false,
  speakingShown: false,
  muteShown: false,
  privateByLink: false,
  errors: [],
};

/** Runs one step; a failure is recorded and the run goes on. */
async function step(name, run) {
  try {
    await run();
  } catch (error) {
    result.errors.push(`${name}: ${error.message.split('\n')[0]}`);
  }
}

/** Inbound audio bytes on the page's subscribe connection, per `getStats()`. */
function audioBytes(page) {
  return page.evaluate(async () => {
    const room = window.spacebarRoom;
    if (!room) return 0;
    const { subscribe } = await room.stats();
    let bytes = 0;
    subscribe?.forEach((report) => {
      if (report.type === 'inbound-rtp' && report.kind === 'audio') bytes += report.bytesReceived ?? 0;
    });
    return bytes;
  });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
    // The test server's media is on 127.0.0.1.
    '--allow-loopback-in-peer-connection',
  ],
});
// One context each: two people, two sets of storage.
const people = [];
const watchdog = setTimeout(async () => {
  result.errors.push(`the run took over ${RUN_MS} ms`);
  await browser.close();
  console.log(JSON.stringify(result));
  process.exit(1);
}, RUN_MS);
try {
  for (const name of ['Alice', 'Bob']) {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('pageerror', (error) => result.errors.push(`${name}'s page: ${error.message}`));
    people.push({ name, page });
  }

  for (const [index, { name, page }] of people.entries()) {
    await step(`${name} joins`, async () => {
      await page.goto(new URL('/rooms/', base).href);
      await page.getByLabel('Your name').fill(name);
      // Alice joins with her camera too: video goes through the same path.
      if (index === 0) await page.getByLabel('Join with my camera too').check();
      await page.getByRole('button', { name: 'Refresh' }).click();
      await page.getByRole('button', { name: `Join ${roomName}` }).click();
      // In the room, or told why not.
      const inRoom = page.locator('#room');
      await inRoom.or(page.getByRole('status').getByText(/^Could not/)).waitFor();
      if (!(await inRoom.isVisible())) throw new Error(await page.getByRole('status').textContent());
      result.joined[index] = true;
    });
  }
  if (!result.joined.every(Boolean)) throw new Error('not both in the room: nothing more to try');

  await step('each sees the other', () =>
    Promise.all(people.map(({ page }) => page.locator('#participants li').nth(1).waitFor())),
  );

  await step('audio arrives', async () => {
    const deadline = Date.now() + STEP_MS;
    while (Date.now() < deadline && result.audioBytesReceived.some((bytes) => bytes === 0)) {
      result.audioBytesReceived = await Promise.all(people.map(({ page }) => audioBytes(page)));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  });

  const [alice, bob] = people.map(({ page }) => page);
  await step('speaking', async () => {
    // Chromium's fake microphone beeps: Bob sees Alice speaking (from the SFU's audio levels).
    await bob.locator('#participants li.speaking .name', { hasText: /^Alice$/ }).waitFor();
    result.speakingShown = true;
  });

  await step('chat', async () => {
    await alice.getByLabel('Message').fill(CHAT);
    await alice.getByRole('button', { name: 'Send' }).click();
    await bob.locator('#chat-log li', { hasText: `Alice: ${CHAT}` }).waitFor();
    result.chatReceived = true;
  });

  await step('mute', async () => {
    await alice.getByRole('button', { name: 'Mute microphone' }).click();
    await bob
      .locator('#participants li', { has: bob.locator('.name', { hasText: /^Alice$/ }) })
      .locator('.muted')
      .waitFor();
    result.muteShown = true;
  });

  await step('private room', async () => {
    await alice.getByRole('button', { name: 'Leave' }).click();
    await alice.getByLabel('Room name').fill(PRIVATE);
    await alice.getByLabel('Private: only people with the link').check();
    await alice.getByRole('button', { name: 'Create and join' }).click();
    const link = alice.getByLabel('Link to this room');
    await link.waitFor();
    const url = await link.inputValue();
    await bob.getByRole('button', { name: 'Leave' }).click();
    await bob.getByRole('button', { name: 'Refresh' }).click();
    await bob.getByRole('button', { name: `Join ${roomName}` }).waitFor();
    if ((await bob.locator('#public-rooms').textContent()).includes(PRIVATE)) {
      throw new Error('the private room is listed');
    }
    await bob.goto(url);
    await bob.getByRole('button', { name: 'Join the room' }).click();
    await bob.getByRole('heading', { name: PRIVATE }).waitFor();
    await bob.locator('#participants li .name', { hasText: /^Alice$/ }).waitFor();
    result.privateByLink = true;
  });
} catch (error) {
  result.errors.push(error.message);
} finally {
  if (screenshots) {
    for (const { name, page } of people) {
      await page.screenshot({ path: `${screenshots}/${name}.png`, fullPage: true }).catch(() => {});
    }
  }
  await browser.close();
  clearTimeout(watchdog);
  console.log(JSON.stringify(result));
}
