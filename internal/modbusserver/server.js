// A Modbus TCP device in its own process, for edgehost's end-to-end tests:
// modbus-serial's ServerTCP over a register bank the test drives through
// stdin, one command a line:
//
//   set holding|input|coil|discrete ADDR VALUE   change the bank
//
// and reports on stdout, one line each: "listening HOST:PORT" once it
// serves, and "wrote holding|coil ADDR VALUE" for every write a client
// makes. Usage: node server.js PORT
"use strict";
const ModbusRTU = require("modbus-serial");
const readline = require("readline");

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error("usage: node server.js PORT");
    process.exit(2);
}
const bank = { holding: new Map(), input: new Map(), coil: new Map(), discrete: new Map() };
const get = (kind, addr) => bank[kind].get(addr) || 0;

const vector = {
    getHoldingRegister: (addr) => get("holding", addr),
    getInputRegister: (addr) => get("input", addr),
    getCoil: (addr) => get("coil", addr) !== 0,
    getDiscreteInput: (addr) => get("discrete", addr) !== 0,
    setRegister: (addr, value) => {
        bank.holding.set(addr, value);
        console.log(`wrote holding ${addr} ${value}`);
    },
    setCoil: (addr, value) => {
        bank.coil.set(addr, value ? 1 : 0);
        console.log(`wrote coil ${addr} ${value ? 1 : 0}`);
    },
};

const server = new ModbusRTU.ServerTCP(vector, { host: "127.0.0.1", port: port, unitID: 255 });
server.on("initialized", () => console.log(`listening 127.0.0.1:${port}`));
server.on("serverError", (err) => {
    console.error(`server error: ${err.message}`);
    process.exit(1);
});
server.on("socketError", (err) => console.error(`socket error: ${err.message}`));

readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const [cmd, kind, addr, value] = line.trim().split(/\s+/);
    if (cmd !== "set" || !(kind in bank) || !Number.isInteger(Number(addr)) || !Number.isInteger(Number(value))) {
        console.error(`bad command: ${line}`);
        return;
    }
    bank[kind].set(Number(addr), Number(value) & 0xffff);
    console.log(`set ${kind} ${addr} ${value}`);
}).on("close", () => process.exit(0));
