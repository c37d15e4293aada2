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

// Where the central directory is and how many entries it has, read as
// LibTorch's zip reader (miniz) reads them: from the zip64 record whenever
// a zip64 locator precedes the end record (PyTorch writes one in every
// file), from the end record otherwise. The directory must lie within the
// file: miniz's own bounds check can overflow (an offset of 2^64 - 1 read
// the byte before the file, found by fuzz_tensor_file).
absl::Status FindDirectory(absl::string_view f, uint64_t* offset,
                           uint64_t* count) {
  if (f.size() < 22) return Bad("too short for a zip archive");
  const size_t lowest = f.size() > 22 + 65535 ? f.size() - 22 - 65535 : 0;
  size_t eocd = f.size() - 22;
  while (Le(f, eocd, 4) != 0x06054b50) {
    if (eocd == lowest) return Bad("no zip end-of-directory record");
    --eocd;
  }
  uint64_t size = 0;
  if (eocd >= 20 && Le(f, eocd - 20, 4) == 0x07064b50) {
    // miniz versions look for the record at the locator's offset or right
    // before the locator; PyTorch writes it right before, so both agree
    // only there.
    const uint64_t record = Le(f, eocd - 20 + 8, 8);
    if (eocd < 76 || record != eocd - 76 || Le(f, record, 4) != 0x06064b50) {
      return Bad("a zip64 locator that does not point just before itself");
    }
    *count = Le(f, record + 32, 8);
    size = Le(f, record + 40, 8);
    *offset = Le(f, record + 48, 8);
  } else {
    *count = Le(f, eocd + 10, 2);
    size = Le(f, eocd + 12, 4);
    *offset = Le(f, eocd + 16, 4);
    if (*count == 0xffff || *offset == 0xffffffff) {
      return Bad("a zip64 archive without its locator");
    }
  }
  if (*offset > f.size() || size > f.size() - *offset) {
    return Bad("a zip directory outside the file");
  }
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

// What an opcode reads after itself: nothing or a fixed number of bytes,
// a little-endian length and that many bytes, or newline-ended lines.
struct Argument {
  int fixed = 0;
  int prefix = 0;
  int lines = 0;
};

// What an opcode does to the unpickler's stack, in Python's terms: the
// values it needs above the innermost mark, what it leaves, and whether
// it first collapses everything down to that mark.
struct StackEffect {
  int needs = 0;       // values above the mark it consumes
  int pushes = 0;      // values it pushes after
  bool mark = false;   // MARK: opens a mark
  bool to_mark = false;  // consumes the values above the mark and the mark
  int below = 0;       // values it needs below the mark (a list or dict)
  bool pairs = false;  // the values above the mark come in pairs
};

// The opcodes of the pickle protocols (every one LibTorch 1.13 names).
// False for a byte that is none: LibTorch refuses those itself.
bool Describe(uint8_t op, Argument* arg, StackEffect* fx) {
  *arg = Argument();
  *fx = StackEffect();
  switch (op) {
    // Values pushed from the argument.
    case 'N': case 0x88: case 0x89: case '}': case ']': case ')': case 0x8f:
      fx->pushes = 1;
      return true;
    case 'K': case 'h': case 0x82:  // 0x82..0x84: EXT1, EXT2, EXT4
      arg->fixed = 1, fx->pushes = 1;
      return true;
    case 'M': case 0x83:
      arg->fixed = 2, fx->pushes = 1;
      return true;
    case 'J': case 'j': case 0x84:
      arg->fixed = 4, fx->pushes = 1;
      return true;
    case 'G':
      arg->fixed = 8, fx->pushes = 1;
      return true;
    case 'U': case 'C': case 0x8c: case 0x8a:
      arg->prefix = 1, fx->pushes = 1;
      return true;
    case 'X': case 'T': case 'B': case 0x8b:
      arg->prefix = 4, fx->pushes = 1;
      return true;
    case 0x8d: case 0x8e:
      arg->prefix = 8, fx->pushes = 1;
      return true;
    case 'I': case 'L': case 'F': case 'S': case 'V': case 'P': case 'g':
      arg->lines = 1, fx->pushes = 1;
      return true;
    case 'c':  // GLOBAL: module and name
      arg->lines = 2, fx->pushes = 1;
      return true;
    // Memo stores look at the top value.
    case 'q':
      arg->fixed = 1, fx->needs = 1, fx->pushes = 1;
      return true;
    case 'r':
      arg->fixed = 4, fx->needs = 1, fx->pushes = 1;
      return true;
    case 'p':
      arg->lines = 1, fx->needs = 1, fx->pushes = 1;
      return true;
    case 0x94: case '2':  // MEMOIZE, DUP
      fx->needs = 1, fx->pushes = op == '2' ? 2 : 1;
      return true;
    case '0':  // POP
      fx->needs = 1;
      return true;
    case 'Q': case 0x85:  // BINPERSID, TUPLE1
      fx->needs = 1, fx->pushes = 1;
      return true;
    case 'R': case 'b': case 'a': case 0x81: case 0x86: case 0x93:
      fx->needs = 2, fx->pushes = 1;
      return true;
    case 's': case 0x87: case 0x92:
      fx->needs = 3, fx->pushes = 1;
      return true;
    case '(':
      fx->mark = true;
      return true;
    case '1':  // POP_MARK
      fx->to_mark = true;
      return true;
    case 't': case 'l': case 0x91:
      fx->to_mark = true, fx->pushes = 1;
      return true;
    case 'd':
      fx->to_mark = true, fx->pairs = true, fx->pushes = 1;
      return true;
    case 'o':
      fx->to_mark = true, fx->needs = 1, fx->pushes = 1;
      return true;
    case 'i':  // INST: module and name lines
      arg->lines = 2, fx->to_mark = true, fx->pushes = 1;
      return true;
    case 'e': case 0x90:  // APPENDS, ADDITEMS
      fx->to_mark = true, fx->below = 1;
      return true;
    case 'u':  // SETITEMS
      fx->to_mark = true, fx->below = 1, fx->pairs = true;
      return true;
    case 0x80:  // PROTO
      arg->fixed = 1;
      return true;
    case 0x95:  // FRAME: its length prefix announces the opcodes after it
      arg->prefix = 8;
      return true;
    default:
      return false;
  }
}

// Walks the pickle's opcodes: every length within the pickle, every memo
// index within its length, and the stack as Python's unpickler keeps it.
// LibTorch 1.13's unpickler does not check its stack: BUILD right after a
// MARK pops from an empty vector and frees a wild pointer (found by
// fuzz_tensor_file), and an odd SETITEMS reads past the end.
absl::Status CheckPickle(absl::string_view p, const std::string& record) {
  size_t at = 0;
  auto too_long = [&](uint64_t n) {
    return Bad(absl::StrCat(record, ": a pickled value of ", n,
                            " bytes where ", p.size() - at, " remain"));
  };
  uint64_t depth = 0;           // values on the stack
  std::vector<uint64_t> marks;  // the depth at each open mark
  while (at < p.size()) {
    const size_t op_at = at;
    const uint8_t op = static_cast<uint8_t>(p[at++]);
    if (op == '.') {  // STOP returns the top value
      const uint64_t base = marks.empty() ? 0 : marks.back();
      if (depth - base < 1) {
        return Bad(absl::StrCat(record, ": the pickle stops with no value"));
      }
      return absl::OkStatus();
    }
    Argument arg;
    StackEffect fx;
    if (!Describe(op, &arg, &fx)) return absl::OkStatus();  // LibTorch's
    const auto bad_stack = [&](const char* why) {
      return Bad(absl::StrCat(record, ": opcode 0x", absl::Hex(op),
                              " at byte ", op_at, " ", why));
    };
    if (fx.mark) marks.push_back(depth);
    if (fx.to_mark) {
      if (marks.empty()) return bad_stack("closes a mark that is not open");
      const uint64_t above = depth - marks.back();
      if (fx.pairs && above % 2 != 0) {
        return bad_stack("pairs an odd number of values");
      }
      if (above < static_cast<uint64_t>(fx.needs)) {
        return bad_stack("finds too few values above its mark");
      }
      depth = marks.back();
      marks.pop_back();
      const uint64_t base = marks.empty() ? 0 : marks.back();
      if (depth - base < static_cast<uint64_t>(fx.below)) {
        return bad_stack("has nothing below its mark to add to");
      }
    } else if (fx.needs > 0) {
      const uint64_t base = marks.empty() ? 0 : marks.back();
      if (depth - base < static_cast<uint64_t>(fx.needs)) {
        return bad_stack("needs more values than the stack holds");
      }
      depth -= static_cast<uint64_t>(fx.needs);
    }
    depth += static_cast<uint64_t>(fx.pushes);

    if (arg.fixed > 0) {
      if (p.size() - at < static_cast<size_t>(arg.fixed)) {
        return too_long(arg.fixed);
      }
      // LONG_BINPUT stores at a memo index; LibTorch grows its memo table
      // to that index (16 bytes an entry). Each entry takes an opcode, so a
      // real pickle never indexes past its own length.
      if (op == 'r' && Le(p, at, 4) > p.size()) {
        return Bad(absl::StrCat(record, ": a pickle memo index of ",
                                Le(p, at, 4), " in ", p.size(), " bytes"));
      }
      at += static_cast<size_t>(arg.fixed);
    } else if (arg.prefix > 0) {
      if (p.size() - at < static_cast<size_t>(arg.prefix)) {
        return too_long(arg.prefix);
      }
      const uint64_t n = Le(p, at, arg.prefix);
      at += static_cast<size_t>(arg.prefix);
      if (n > p.size() - at) return too_long(n);
      // FRAME's opcodes follow it; the others' payload does.
      if (op != 0x95) at += static_cast<size_t>(n);
    } else {
      for (int i = 0; i < arg.lines; ++i) {
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
  for (const Entry& e : entries) {
    // PyTorch stores its records uncompressed; a compressed one would
    // declare a size that only inflating it can verify.
    if (e.method != 0) {
      return Bad(absl::StrCat("zip entry ", e.name, " is compressed (method ",
                              e.method, "); torch.save stores its records"));
    }
    if (e.offset > f.size() || e.compressed > f.size() - e.offset ||
        e.size != e.compressed) {
      return Bad(absl::StrCat("zip entry ", e.name, " declares ", e.size,
                              " bytes, more than the file holds"));
    }
    // Every candidate for the pickle LibTorch reads: its zip reader looks
    // names up without regard to case ("data.Pkl" is "data.pkl").
    if (!absl::EndsWithIgnoreCase(e.name, "data.pkl")) continue;
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
  }
  return absl::OkStatus();
}

}  // namespace autoq::evaluator
