// Compiles src/*.sol with the solc npm package (the real compiler as WebAssembly) and
// writes artifacts/<Contract>.json with the ABI and the creation bytecode. The artifacts
// are committed, so building and testing Seisan needs no npm; run `scripts/anvil.sh
// compile` to regenerate them after changing a source.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const root = __dirname;
const sources = {};
for (const name of fs.readdirSync(path.join(root, "src"))) {
  if (name.endsWith(".sol")) {
    sources[name] = { content: fs.readFileSync(path.join(root, "src", name), "utf8") };
  }
}

function findImports(importPath) {
  for (const base of [path.join(root, "node_modules"), path.join(root, "src")]) {
    const candidate = path.join(base, importPath);
    if (fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, "utf8") };
    }
  }
  return { error: `import not found: ${importPath}` };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length > 0) process.exit(1);

fs.mkdirSync(path.join(root, "artifacts"), { recursive: true });
for (const file of Object.keys(sources)) {
  for (const [name, contract] of Object.entries(output.contracts[file])) {
    const artifact = {
      contractName: name,
      compiler: `solc ${solc.version()}`,
      abi: contract.abi,
      bytecode: "0x" + contract.evm.bytecode.object,
    };
    const out = path.join(root, "artifacts", `${name}.json`);
    fs.writeFileSync(out, JSON.stringify(artifact, null, 2) + "\n");
    console.log(`wrote ${path.relative(root, out)}`);
  }
}
