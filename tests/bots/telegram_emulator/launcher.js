// Starts the Telegram Bot API emulator (telegram-test-api 4.2.1) for the adapter tests, with the
// fixes python-telegram-bot 22 needs and a few test controls.
//
// Fixes to 4.2.1:
//   1. getMe lacks is_bot;
//   2. message dates are in milliseconds (Telegram sends seconds);
//   3. callback queries lack chat_instance;
//   4. editMessageText / editMessageReplyMarkup return null (Telegram returns the message);
//   5. getUpdates ignores `offset` and forgets an update once it has been fetched; Telegram
//      keeps it until a getUpdates with a higher offset confirms it (so a bot that stops after
//      fetching, before handling, gets it again on restart);
//   6. getUpdates ignores `timeout` and answers at once, so a bot polls without pause; Telegram
//      holds the call until an update comes (long polling), and so does this one;
//   and: sendChatAction and setMyCommands are missing; webhooks are posted without the
//   X-Telegram-Bot-Api-Secret-Token header that Telegram sends when a secret_token is set.
// Controls (test side, not Telegram API):
//   GET  /control/calls             the bot's Bot API calls in order (getUpdates left out)
//   POST /control/throttle          {method, count, retry_after}: the next `count` calls of
//                                   `method` get Telegram's 429 answer
//   POST /control/redeliver         {update_id | "last"}: deliver that user update again
//   POST /control/unstarted         {chat_id}: that user never started the bot, so sendMessage
//                                   to their chat gets Telegram's 403 answer
//   POST /control/replies           {token, timeout}: the bot's messages to any chat not read
//                                   yet (then read), held up to `timeout` s until one comes; the
//                                   package's client getUpdates answers one chat at once and scans
//                                   every stored message, so simulated customers polling it cost
//                                   more than the bot they measure
//
// Usage: node launcher.js PORT   (prints "ready <port>" once listening)

'use strict';

const TelegramServer = require('telegram-test-api');
const { routes } = require('telegram-test-api/lib/routes/index');

const port = Number(process.argv[2] || 9000);
const calls = [];
const throttles = {};
const unstarted = new Set();

function asSeconds(millis) {
  return millis > 1e11 ? Math.floor(millis / 1000) : millis;
}

function parsed(value) {
  if (typeof value !== 'string') return value;
  try { return JSON.parse(value); } catch (_error) { return value; }
}

function storedMessage(server, body) {
  const found = server.storage.botMessages.find((u) => (
    String(u.messageId) === String(body.message_id)
    && String(u.message.chat_id) === String(body.chat_id)));
  if (!found) return null;
  const { message } = found;
  return {
    message_id: found.messageId,
    date: asSeconds(found.time),
    chat: { id: Number(message.chat_id), type: 'private' },
    from: { id: 666, is_bot: true, first_name: 'Concierge Test' },
    text: message.text,
    reply_markup: message.reply_markup,
  };
}

const waiting = new Set(); // getUpdates calls held open (long polling), woken by a new update

// The updates `getUpdates(offset)` answers with: those not confirmed yet. An offset confirms
// every update below it; a redelivery the test asked for comes once, whatever the offset.
function pending(server, token, offset) {
  const result = [];
  for (const update of server.storage.userMessages) {
    if (update.botToken !== token || update.isRead) continue;
    if (update.again) {
      update.again = false;
      update.isRead = true;
      result.push(update);
    } else if (update.updateId < offset) {
      update.isRead = true;
    } else {
      result.push(update);
    }
  }
  return result;
}

function wakePollers() {
  for (const done of [...waiting]) done();
}

const unread = new Map(); // bot token -> its messages not read by /control/replies yet
const replyWaiters = new Map(); // bot token -> held /control/replies calls, woken by a message

function takeUnread(token) {
  const fresh = (unread.get(token) || []).filter((update) => !update.isRead);
  unread.delete(token);
  for (const update of fresh) update.isRead = true;
  return fresh;
}

// Holds the caller until `wake(token)` or `timeout` seconds, or the caller gives up.
function held(waiters, token, timeout, res) {
  return new Promise((resolve) => {
    if (!waiters.has(token)) waiters.set(token, new Set());
    const own = waiters.get(token);
    const timer = setTimeout(done, timeout * 1000);
    function done() {
      clearTimeout(timer);
      own.delete(done);
      resolve();
    }
    own.add(done);
    res.on('close', done);
  });
}

// Registered ahead of the package's own routes, so these answer first.
function fixes(app, server) {
  app.all('/bot:token/:method', (req, res, next) => {
    const { method } = req.params;
    if (method !== 'getUpdates') calls.push({ method, body: req.body, at: Date.now() });
    const throttle = throttles[method];
    if (throttle && throttle.count > 0) {
      throttle.count -= 1;
      res.status(429).json({
        ok: false,
        error_code: 429,
        description: `Too Many Requests: retry after ${throttle.retry_after}`,
        parameters: { retry_after: throttle.retry_after },
      });
      return;
    }
    if (method === 'sendMessage' && unstarted.has(String(req.body.chat_id))) {
      res.status(403).json({
        ok: false,
        error_code: 403,
        description: "Forbidden: bot can't initiate conversation with a user",
      });
      return;
    }
    next();
  });
  app.all('/bot:token/getUpdates', async (req, res) => {
    const { token } = req.params;
    const param = (name) => (req.body && req.body[name] !== undefined ? req.body[name] : req.query[name]);
    const offset = Number(param('offset')) || 0;
    const timeout = Math.min(Number(param('timeout')) || 0, 50);
    let result = pending(server, token, offset);
    if (result.length === 0 && timeout > 0) {
      // Long polling: held until an update comes or `timeout` seconds pass, as Telegram does.
      await new Promise((resolve) => {
        const timer = setTimeout(done, timeout * 1000);
        function done() {
          clearTimeout(timer);
          waiting.delete(done);
          resolve();
        }
        waiting.add(done);
        // The bot gave up (stopping): nothing more to hold. Not the request's 'close', which
        // Node emits once the body is read: the call was then answered at once, never held.
        res.on('close', done);
      });
      result = pending(server, token, offset);
    }
    res.json({ ok: true, result: result.map((update) => TelegramServer.formatUpdate(update)) });
  });
  app.all('/bot:token/getMe', (_req, res) => {
    res.json({
      ok: true,
      result: {
        id: 666,
        is_bot: true,
        first_name: 'Concierge Test',
        username: 'ConciergeTestBot',
        can_join_groups: true,
        can_read_all_group_messages: false,
        supports_inline_queries: false,
      },
    });
  });
  app.all('/bot:token/sendChatAction', (_req, res) => res.json({ ok: true, result: true }));
  app.all('/bot:token/setMyCommands', (_req, res) => res.json({ ok: true, result: true }));
  for (const method of ['editMessageText', 'editMessageReplyMarkup']) {
    app.all(`/bot:token/${method}`, (req, res) => {
      if (req.body.inline_message_id) {
        res.json({ ok: true, result: true });
        return;
      }
      server[method](req.body);
      const message = storedMessage(server, req.body);
      if (!message) {
        res.status(400).json({ ok: false, error_code: 400, description: 'Bad Request: message to edit not found' });
        return;
      }
      res.json({ ok: true, result: message });
    });
  }
  app.get('/control/calls', (_req, res) => res.json({ ok: true, result: calls }));
  app.post('/control/throttle', (req, res) => {
    throttles[req.body.method] = { count: Number(req.body.count), retry_after: Number(req.body.retry_after) };
    res.json({ ok: true, result: true });
  });
  app.post('/control/replies', async (req, res) => {
    const { token } = req.body;
    const timeout = Math.min(Number(req.body.timeout) || 0, 50);
    let result = takeUnread(token);
    if (result.length === 0 && timeout > 0) {
      await held(replyWaiters, token, timeout, res);
      result = takeUnread(token);
    }
    res.json({ ok: true, result });
  });
  app.post('/control/unstarted', (req, res) => {
    unstarted.add(String(req.body.chat_id));
    res.json({ ok: true, result: true });
  });
  app.post('/control/redeliver', async (req, res) => {
    const wanted = req.body.update_id === 'last'
      ? Math.max(...Object.keys(server.delivered).map(Number)) : Number(req.body.update_id);
    const update = server.delivered[wanted];
    if (!update) {
      res.status(404).json({ ok: false, description: 'no such update' });
      return;
    }
    if (server.webhooks[update.botToken]) {
      await server.postWebhook(update);
    } else {
      update.isRead = false;
      update.again = true;
      wakePollers();
    }
    res.json({ ok: true, result: true });
  });
}

routes.unshift(fixes);

const originalAddBotMessage = TelegramServer.prototype.addBotMessage;
TelegramServer.prototype.addBotMessage = function addBotMessage(rawMessage, botToken) {
  const message = originalAddBotMessage.call(this, rawMessage, botToken);
  const stored = this.storage.botMessages[this.storage.botMessages.length - 1];
  for (const key of ['reply_parameters', 'message_thread_id']) {
    if (key in stored.message) stored.message[key] = parsed(stored.message[key]);
  }
  const result = { ...message, date: asSeconds(message.date), from: { id: 666, is_bot: true, first_name: 'Concierge Test' } };
  if (!unread.has(botToken)) unread.set(botToken, []);
  unread.get(botToken).push(stored);
  for (const done of [...(replyWaiters.get(botToken) || [])]) done();
  delete result.reply_parameters;
  delete result.chat_id;
  if (result.message_thread_id !== undefined) result.message_thread_id = Number(result.message_thread_id);
  return result;
};

const originalFormatUpdate = TelegramServer.formatUpdate;
TelegramServer.formatUpdate = function formatUpdate(update) {
  const formatted = originalFormatUpdate(update);
  const query = formatted.callback_query;
  if (query) {
    const chatId = query.message && query.message.chat ? query.message.chat.id : query.from.id;
    query.chat_instance = String(chatId);
    if (query.message) query.message.date = asSeconds(query.message.date || Date.now());
  }
  if (formatted.message) formatted.message.date = asSeconds(formatted.message.date || Date.now());
  return formatted;
};

TelegramServer.prototype.postWebhook = async function postWebhook(update) {
  const webhook = this.webhooks[update.botToken];
  const headers = { 'Content-Type': 'application/json' };
  if (webhook.secret_token) headers['X-Telegram-Bot-Api-Secret-Token'] = webhook.secret_token;
  const response = await fetch(webhook.url, {
    method: 'POST', headers, body: JSON.stringify(TelegramServer.formatUpdate(update)),
  });
  if (response.status > 204) throw new Error(`Webhook invocation failed: ${response.status}`);
};

TelegramServer.prototype.addUserUpdate = async function addUserUpdate(update) {
  if (!update.botToken) throw new Error('The update must contain a `botToken` field.');
  this.delivered[update.updateId] = update;
  if (this.webhooks[update.botToken]) {
    this.updateId++;
    await this.postWebhook(update);
    return;
  }
  this.storage.userMessages.push(update);
  this.updateId++;
  wakePollers();
};

async function main() {
  const server = new TelegramServer({ port, host: '127.0.0.1', storeTimeout: 600 });
  server.delivered = {};
  await server.start();
  process.stdout.write(`ready ${port}\n`);
  const stop = async () => {
    await server.stop();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The test process holds our stdin: when it goes away, so do we.
  process.stdin.on('end', stop);
  process.stdin.resume();
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
