// Deploys the testnet token on a local anvil and hands out balances, using only
// JSON-RPC calls from anvil's unlocked dev accounts (no npm packages needed).
//
// usage: node deploy.js RPC_URL OUT_JSON
// Accounts (anvil's well-known dev accounts, by index): 0 deploys and keeps the rest
// of the supply; 3 (exchange-a), 4 (exchange-b) and 5 (an unregistered outsider) get
// 1000 WBTC each. OUT_JSON receives {"token": ADDRESS, "chain_id": N, "block": N}.
"use strict";
const fs = require("fs");
const path = require("path");

const [rpc, out] = process.argv.slice(2);
if (!rpc || !out) {
  console.error("usage: node deploy.js RPC_URL OUT_JSON");
  process.exit(2);
}
const artifact = JSON.parse(
  fs.readFileSync(path.join(__dirname, "artifacts", "WrappedBtc.json"), "utf8"),
);

let id = 0;
async function call(method, params) {
  const response = await fetch(rpc, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
  });
  const body = await response.json();
  if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result;
}

async function receipt(hash) {
  for (let i = 0; i < 600; i++) {
    const r = await call("eth_getTransactionReceipt", [hash]);
    if (r) {
      if (r.status !== "0x1") throw new Error(`transaction ${hash} reverted`);
      return r;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`transaction ${hash} was not mined`);
}

const word = (hex) => hex.replace(/^0x/, "").padStart(64, "0");

(async () => {
  const accounts = await call("eth_accounts", []);
  const deployer = accounts[0];
  const supply = 21_000_000n * 100_000_000n;
  const data = artifact.bytecode + word(supply.toString(16));
  const hash = await call("eth_sendTransaction", [{ from: deployer, data }]);
  const token = (await receipt(hash)).contractAddress;
  const transfer = "0xa9059cbb";
  const each = 1000n * 100_000_000n;
  for (const index of [3, 4, 5]) {
    const tx = await call("eth_sendTransaction", [
      { from: deployer, to: token, data: transfer + word(accounts[index]) + word(each.toString(16)) },
    ]);
    await receipt(tx);
  }
  const chainId = parseInt(await call("eth_chainId", []), 16);
  const block = parseInt(await call("eth_blockNumber", []), 16);
  fs.writeFileSync(out, JSON.stringify({ token, chain_id: chainId, block }, null, 2) + "\n");
  console.log(`WBTC deployed at ${token} on chain ${chainId}`);
})().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
