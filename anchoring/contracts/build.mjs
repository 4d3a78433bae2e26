// Compiles RegistryAnchor.sol offline with the exact solc pinned in package.json and writes the
// ABI and creation bytecode next to it. With --check it writes nothing and exits 1 when the
// committed files differ from a fresh compile, so anyone can confirm that the bytecode deployed
// on chain is the one this source produces.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const solc = require("solc");

const here = dirname(fileURLToPath(import.meta.url));
const SOURCE = "RegistryAnchor.sol";
const CONTRACT = "RegistryAnchor";
const EXPECTED_SOLC = "0.8.37";

// ChainMaker's EVM runtime predates Shanghai (no PUSH0), hence "paris".
const input = {
  language: "Solidity",
  sources: { [SOURCE]: { content: readFileSync(join(here, SOURCE), "utf8") } },
  settings: {
    evmVersion: "paris",
    optimizer: { enabled: true, runs: 200 },
    metadata: { bytecodeHash: "ipfs" },
    outputSelection: { [SOURCE]: { [CONTRACT]: ["abi", "evm.bytecode.object"] } },
  },
};

function compile() {
  if (!solc.version().startsWith(EXPECTED_SOLC + "+")) {
    throw new Error(`solc ${solc.version()} is not the pinned ${EXPECTED_SOLC}`);
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  }
  const contract = output.contracts[SOURCE][CONTRACT];
  return {
    abi: JSON.stringify(contract.abi, null, 2) + "\n",
    bin: contract.evm.bytecode.object + "\n",
  };
}

const built = compile();
const files = { [`${CONTRACT}.abi.json`]: built.abi, [`${CONTRACT}.bin`]: built.bin };
if (process.argv.includes("--check")) {
  let same = true;
  for (const [name, text] of Object.entries(files)) {
    let committed = "";
    try {
      committed = readFileSync(join(here, name), "utf8");
    } catch {
      committed = "";
    }
    if (committed !== text) {
      console.error(`${name} differs from a fresh compile`);
      same = false;
    }
  }
  process.exit(same ? 0 : 1);
}
for (const [name, text] of Object.entries(files)) {
  writeFileSync(join(here, name), text);
}
console.log(`compiled ${CONTRACT} with solc ${solc.version()}`);
