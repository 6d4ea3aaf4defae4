throw new Error('uWebSockets.js is not installed: use the ws-binary connection endpoint');
