#include "evaluator/torch_save_check.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace autoq::evaluator {
namespace {

uint64_t Le(absl::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) {
    v = v << 8 | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  }
  return v;
}

absl::Status Bad(const std::string& why) {
  return absl::InvalidArgumentError(why);
}

struct Entry {
  std::string name;
  uint64_t method = 0, compressed = 0, size = 0, offset = 0;
};

// Where the central directory is and how many entries it has (zip64 when
// the classic record says so).
absl::Status FindDirectory(absl::string_view f, uint64_t* offset,
                           uint64_t* count) {
  if (f.size() < 22) return Bad("too short for a zip archive");
  const size_t lowest = f.size() > 22 + 65535 ? f.size() - 22 - 65535 : 0;
  size_t eocd = f.size() - 22;
  while (Le(f, eocd, 4) != 0x06054b50) {
    if (eocd == lowest) return Bad("no zip end-of-directory record");
    --eocd;
  }
  *count = Le(f, eocd + 10, 2);
  *offset = Le(f, eocd + 16, 4);
  if (*count != 0xffff && *offset != 0xffffffff) return absl::OkStatus();
  if (eocd < 20 || Le(f, eocd - 20, 4) != 0x07064b50) {
    return Bad("a zip64 archive without its locator");
  }
  const uint64_t record = Le(f, eocd - 20 + 8, 8);
  if (record > f.size() || f.size() - record < 56 ||
      Le(f, record, 4) != 0x06064b50) {
    return Bad("a zip64 end-of-directory record outside the file");
  }
  *count = Le(f, record + 32, 8);
  *offset = Le(f, record + 48, 8);
  return absl::OkStatus();
}

absl::Status ReadDirectory(absl::string_view f, std::vector<Entry>* out) {
  uint64_t at = 0, count = 0;
  absl::Status st = FindDirectory(f, &at, &count);
  if (!st.ok()) return st;
  if (count > f.size() / 46) return Bad("more zip entries than fit the file");
  for (uint64_t i = 0; i < count; ++i) {
    if (at > f.size() || f.size() - at < 46 || Le(f, at, 4) != 0x02014b50) {
      return Bad("a zip directory entry outside the file");
    }
    Entry e;
    e.method = Le(f, at + 10, 2);
    e.compressed = Le(f, at + 20, 4);
    e.size = Le(f, at + 24, 4);
    e.offset = Le(f, at + 42, 4);
    const uint64_t name = Le(f, at + 28, 2), extra = Le(f, at + 30, 2),
                   comment = Le(f, at + 32, 2);
    if (f.size() - at - 46 < name + extra + comment) {
      return Bad("a zip directory entry outside the file");
    }
    e.name = std::string(f.substr(at + 46, name));
    // Zip64 sizes: in the 0x0001 extra field, in this order, for each
    // classic field that reads 0xffffffff.
    for (uint64_t x = at + 46 + name; x + 4 <= at + 46 + name + extra;) {
      const uint64_t id = Le(f, x, 2), len = Le(f, x + 2, 2);
      if (x + 4 + len > at + 46 + name + extra) break;
      if (id == 1) {
        uint64_t p = x + 4;
        for (uint64_t* field : {&e.size, &e.compressed, &e.offset}) {
          if (*field != 0xffffffff) continue;
          if (p + 8 > x + 4 + len) return Bad("a short zip64 extra field");
          *field = Le(f, p, 8);
          p += 8;
        }
      }
      x += 4 + len;
    }
    out->push_back(std::move(e));
    at += 46 + name + extra + comment;
  }
  return absl::OkStatus();
}

// The opcodes of pickle protocol 2 and up that LibTorch's unpickler reads,
// by the size of their argument: a fixed size, a length prefix, or a line.
absl::Status CheckPickle(absl::string_view p, const std::string& record) {
  size_t at = 0;
  auto too_long = [&](uint64_t n) {
    return Bad(absl::StrCat(record, ": a pickled value of ", n,
                            " bytes where ", p.size() - at, " remain"));
  };
  while (at < p.size()) {
    const uint8_t op = static_cast<uint8_t>(p[at++]);
    int fixed = -1;    // bytes of a fixed argument
    int prefix = 0;    // bytes of a length prefix
    bool line = false;  // newline-terminated argument(s)
    int lines = 0;
    switch (op) {
      case '.':  // STOP
        return absl::OkStatus();
      case '}': case ']': case '(': case ')': case 't': case 'R': case 'Q':
      case 's': case 'u': case 'a': case 'e': case 'N': case 'b': case '0':
      case '1': case '2': case 'l': case 'd': case 'o': case 0x85: case 0x86:
      case 0x87: case 0x88: case 0x89: case 0x81: case 0x93: case 0x94:
        fixed = 0;
        break;
      case 0x80: case 'K': case 'q': case 'h': case 0x82:
        fixed = 1;
        break;
      case 'M': case 0x83:
        fixed = 2;
        break;
      case 'J': case 'r': case 'j': case 0x84:
        fixed = 4;
        break;
      case 'G':
        fixed = 8;
        break;
      case 'U': case 'C': case 0x8c: case 0x8a:
        prefix = 1;
        break;
      case 'X': case 'T': case 'B': case 0x8b:
        prefix = 4;
        break;
      case 0x8d: case 0x8e: case 0x95: case 0x96:
        prefix = 8;
        break;
      case 'c':  // GLOBAL: module and name lines
        line = true;
        lines = 2;
        break;
      case 'I': case 'L': case 'F': case 'S': case 'V': case 'P': case 'p':
      case 'g':
        line = true;
        lines = 1;
        break;
      default:
        return absl::OkStatus();  // unknown here: LibTorch decides
    }
    if (fixed >= 0) {
      if (p.size() - at < static_cast<size_t>(fixed)) return too_long(fixed);
      // LONG_BINPUT stores at a memo index; LibTorch grows its memo table
      // to that index (16 bytes an entry). Each entry takes an opcode, so a
      // real pickle never indexes past its own length.
      if (op == 'r' && Le(p, at, 4) > p.size()) {
        return Bad(absl::StrCat(record, ": a pickle memo index of ",
                                Le(p, at, 4), " in ", p.size(), " bytes"));
      }
      at += static_cast<size_t>(fixed);
    } else if (prefix > 0) {
      if (p.size() - at < static_cast<size_t>(prefix)) {
        return too_long(prefix);
      }
      const uint64_t n = Le(p, at, prefix);
      at += static_cast<size_t>(prefix);
      // FRAME (0x95) announces the bytes of the frame, which follow as
      // opcodes; the others are followed by their payload.
      if (n > p.size() - at) return too_long(n);
      if (op != 0x95) at += static_cast<size_t>(n);
    } else if (line) {
      for (int i = 0; i < lines; ++i) {
        const size_t end = p.find('\n', at);
        if (end == absl::string_view::npos) {
          return Bad(absl::StrCat(record, ": an unterminated pickled line"));
        }
        at = end + 1;
      }
    }
  }
  return Bad(absl::StrCat(record, ": the pickle has no STOP"));
}

}  // namespace

absl::Status CheckTorchSaveBytes(absl::string_view f) {
  std::vector<Entry> entries;
  absl::Status st = ReadDirectory(f, &entries);
  if (!st.ok()) return st;
  bool pickle_checked = false;
  for (const Entry& e : entries) {
    // Stored entries hold their bytes; deflate expands at most 1032-fold.
    const bool stored = e.method == 0;
    if (e.offset > f.size() || e.compressed > f.size() - e.offset ||
        (stored && e.size != e.compressed) ||
        (!stored && e.size / 1032 > e.compressed + 1)) {
      return Bad(absl::StrCat("zip entry ", e.name, " declares ", e.size,
                              " bytes, more than the file holds"));
    }
    if (!stored || !absl::EndsWith(e.name, "data.pkl") || pickle_checked) {
      continue;
    }
    if (f.size() - e.offset < 30 || Le(f, e.offset, 4) != 0x04034b50) {
      return Bad(absl::StrCat("zip entry ", e.name, ": no local header"));
    }
    const uint64_t start =
        e.offset + 30 + Le(f, e.offset + 26, 2) + Le(f, e.offset + 28, 2);
    if (start > f.size() || f.size() - start < e.size) {
      return Bad(absl::StrCat("zip entry ", e.name, " runs past the file"));
    }
    st = CheckPickle(f.substr(start, e.size), e.name);
    if (!st.ok()) return st;
    pickle_checked = true;
  }
  return absl::OkStatus();
}

}  // namespace autoq::evaluator
