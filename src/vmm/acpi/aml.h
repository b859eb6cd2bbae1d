// A small AML (ACPI Machine Language) encoder: the handful of terms a microVM's DSDT needs.
// Encodings follow the ACPI 6.5 specification, chapter 20 (AML) and section 6.4 (resource
// descriptors). Objects are built bottom-up as byte vectors; containers (Scope, Device, Package,
// Buffer) prepend their PkgLength once their contents are known.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace edgevisor::acpi::aml {

using Bytes = std::vector<uint8_t>;

// PkgLength for a body of `body_len` bytes: the encoded length counts itself.
Bytes PkgLength(size_t body_len);

// A NameString: an optional root prefix '\' then one or more 4-character segments separated by
// '.', each padded with '_' ("_SB" -> "_SB_"). Segments longer than 4 characters are cut.
Bytes NameString(std::string_view path);

// Data objects.
Bytes Integer(uint64_t v);  // ZeroOp/OneOp/Byte/Word/DWord/QWord, the shortest that fits
Bytes String(std::string_view s);
Bytes EisaId(std::string_view id);  // "PNP0501" -> the compressed 32-bit EISA ID as an Integer
Bytes Buffer(const Bytes& data);
Bytes Package(const std::vector<Bytes>& elements);

// Named objects and scopes.
Bytes Name(std::string_view name, const Bytes& value);
Bytes Scope(std::string_view name, const std::vector<Bytes>& terms);
Bytes Device(std::string_view name, const std::vector<Bytes>& terms);

// Resource descriptors, and a ResourceTemplate (a Buffer ending in an End Tag).
Bytes IoPort(uint16_t base, uint8_t length);          // IO(Decode16, base, base, 1, length)
Bytes IrqNoFlags(uint8_t irq);                        // IRQNoFlags() {irq}, ISA edge high
Bytes Memory32Fixed(uint32_t base, uint32_t length);  // read-write
Bytes Interrupt(uint32_t gsi, bool edge = true);      // Extended Interrupt, consumer, active high
Bytes ResourceTemplate(const std::vector<Bytes>& descriptors);

}  // namespace edgevisor::acpi::aml
