#include "idem/canonical_json.h"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <cstdint>
#include <exception>
#include <new>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/canonical_json_internal.h"

namespace idem {
namespace {

namespace json = boost::json;

// Deeper documents are rejected by the parser itself, which also bounds the
// recursion of Emit() and of Node's destructor.
constexpr size_t kMaxDepth = 64;

// One parsed value. Scalars are kept as their canonical text (numbers
// verbatim, strings re-escaped); objects keep decoded member names, sorted
// by bytes once the object is complete, parallel to `children`.
struct Node {
  enum class Kind : uint8_t { kScalar, kArray, kObject };
  Kind kind = Kind::kScalar;
  std::string text;               // kScalar
  std::vector<std::string> keys;  // kObject
  std::vector<Node> children;     // kArray elements, kObject member values
};

// Appends `s` with the minimal escapes JSON requires: the quote, the
// backslash and control characters. Everything else, including UTF-8
// sequences (already validated by the parser), is copied as is.
void AppendEscaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 0x0F]);
        } else {
          out.push_back(c);
        }
    }
  }
}

// Sorts the members of a complete object by key bytes (std::string compares
// as unsigned bytes). False when two members share a name.
bool SortMembers(Node& object) {
  std::vector<std::string>& keys = object.keys;
  const size_t n = keys.size();
  if (std::adjacent_find(keys.begin(), keys.end(),
                         [](const std::string& a, const std::string& b) {
                           return !(a < b);
                         }) == keys.end()) {
    return true;  // already strictly ascending: the common case
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&keys](size_t a, size_t b) { return keys[a] < keys[b]; });
  for (size_t i = 1; i < n; ++i) {
    if (keys[order[i - 1]] == keys[order[i]]) return false;
  }
  std::vector<std::string> sorted_keys;
  std::vector<Node> sorted_children;
  sorted_keys.reserve(n);
  sorted_children.reserve(n);
  for (const size_t i : order) {
    sorted_keys.push_back(std::move(keys[i]));
    sorted_children.push_back(std::move(object.children[i]));
  }
  keys = std::move(sorted_keys);
  object.children = std::move(sorted_children);
  return true;
}

// The basic_parser handler: builds the Node tree. Strings and numbers may
// arrive in several parts; the parts are accumulated in `scalar_`.
class TreeBuilder {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  Node& root() { return root_; }
  bool duplicate_key() const { return duplicate_key_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_array_begin(json::error_code&) { return OpenContainer(Node::Kind::kArray); }
  bool on_array_end(std::size_t, json::error_code&) {
    open_.pop_back();
    return true;
  }
  bool on_object_begin(json::error_code&) { return OpenContainer(Node::Kind::kObject); }
  bool on_object_end(std::size_t, json::error_code& ec) {
    if (!SortMembers(*open_.back())) {
      duplicate_key_ = true;
      ec = json::error::syntax;  // the message is built from duplicate_key()
      return false;
    }
    open_.pop_back();
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    StringPart(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    StringPart(s);
    scalar_.push_back('"');
    in_scalar_ = false;
    AddValue().text = std::move(scalar_);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }

  // Numbers keep the exact text the client sent; the parsed value is unused.
  bool on_number_part(json::string_view s, json::error_code&) {
    NumberPart(s);
    return true;
  }
  bool on_int64(int64_t, json::string_view s, json::error_code&) { return Number(s); }
  bool on_uint64(uint64_t, json::string_view s, json::error_code&) { return Number(s); }
  bool on_double(double, json::string_view s, json::error_code&) { return Number(s); }

  bool on_bool(bool b, json::error_code&) {
    AddValue().text = b ? "true" : "false";
    return true;
  }
  bool on_null(json::error_code&) {
    AddValue().text = "null";
    return true;
  }
  // Comments are disabled in the parse options; these are never called.
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  // The slot for the next value: the root, the next array element, or the
  // member named by the key just read. Pointers in `open_` stay valid: only
  // the innermost open container ever grows.
  Node& AddValue() {
    if (open_.empty()) return root_;
    Node& parent = *open_.back();
    if (parent.kind == Node::Kind::kObject) {
      parent.keys.push_back(std::move(key_));
      key_.clear();
    }
    return parent.children.emplace_back();
  }

  bool OpenContainer(Node::Kind kind) {
    Node& node = AddValue();
    node.kind = kind;
    open_.push_back(&node);
    return true;
  }

  void StringPart(json::string_view s) {
    if (!in_scalar_) {
      scalar_.assign(1, '"');
      in_scalar_ = true;
    }
    AppendEscaped(scalar_, std::string_view(s.data(), s.size()));
  }

  void NumberPart(json::string_view s) {
    if (!in_scalar_) {
      scalar_.clear();
      in_scalar_ = true;
    }
    scalar_.append(s.data(), s.size());
  }

  bool Number(json::string_view last_part) {
    NumberPart(last_part);
    in_scalar_ = false;
    AddValue().text = std::move(scalar_);
    return true;
  }

  Node root_;
  std::vector<Node*> open_;
  std::string key_;
  std::string scalar_;
  bool in_scalar_ = false;
  bool duplicate_key_ = false;
};

std::string AtOffset(size_t offset) {
  return " at byte offset " + std::to_string(offset);
}

Result<Node> Parse(std::string_view text) {
  json::parse_options options;  // strict: no comments, no trailing commas
  options.max_depth = kMaxDepth;
  try {
    json::basic_parser<TreeBuilder> parser(options);
    json::error_code ec;
    const size_t consumed = parser.write_some(false, text.data(), text.size(), ec);
    if (ec) {
      if (parser.handler().duplicate_key()) {
        return InvalidArgument("duplicate member name in the object ending" +
                               AtOffset(consumed));
      }
      if (ec == json::error::too_deep) {
        return InvalidArgument("nesting deeper than " + std::to_string(kMaxDepth) +
                               " levels" + AtOffset(consumed));
      }
      return InvalidArgument(ec.message() + AtOffset(consumed));
    }
    if (consumed != text.size()) {
      return InvalidArgument("unexpected data after the JSON value" + AtOffset(consumed));
    }
    return std::move(parser.handler().root());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("JSON document too large to canonicalize");
  } catch (const std::exception& e) {
    return Internal(std::string("JSON parser failed: ") + e.what());
  }
}

void Emit(const Node& node, std::string& out) {
  switch (node.kind) {
    case Node::Kind::kScalar:
      out += node.text;
      return;
    case Node::Kind::kArray:
      out.push_back('[');
      for (size_t i = 0; i < node.children.size(); ++i) {
        if (i > 0) out.push_back(',');
        Emit(node.children[i], out);
      }
      out.push_back(']');
      return;
    case Node::Kind::kObject:
      out.push_back('{');
      for (size_t i = 0; i < node.children.size(); ++i) {
        if (i > 0) out.push_back(',');
        out.push_back('"');
        AppendEscaped(out, node.keys[i]);
        out += "\":";
        Emit(node.children[i], out);
      }
      out.push_back('}');
      return;
  }
}

std::string ToCanonical(const Node& node, size_t size_hint) {
  std::string out;
  out.reserve(size_hint);
  Emit(node, out);
  return out;
}

// RFC 6901: "" is the whole document; otherwise "/"-separated reference
// tokens in which "~1" stands for "/" and "~0" for "~".
Result<std::vector<std::string>> ParsePointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer.front() != '/') {
    return InvalidArgument("invalid JSON pointer: must be empty or start with '/'");
  }
  std::string token;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(token));
      token.clear();
      continue;
    }
    if (pointer[i] != '~') {
      token.push_back(pointer[i]);
      continue;
    }
    if (i + 1 < pointer.size() && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
      token.push_back(pointer[++i] == '0' ? '~' : '/');
      continue;
    }
    return InvalidArgument("invalid JSON pointer: '~' must be followed by '0' or '1'");
  }
  return tokens;
}

// An RFC 6901 array index: "0" or digits without a leading zero. Anything
// else (including "-", the element after the last) selects nothing.
std::optional<size_t> ArrayIndex(std::string_view token) {
  if (token.empty() || token.size() > 18) return std::nullopt;
  if (token.size() > 1 && token.front() == '0') return std::nullopt;
  size_t index = 0;
  for (const char c : token) {
    if (c < '0' || c > '9') return std::nullopt;
    index = index * 10 + static_cast<size_t>(c - '0');
  }
  return index;
}

const Node* Resolve(const Node& root, const std::vector<std::string>& tokens) {
  const Node* node = &root;
  for (const std::string& token : tokens) {
    if (node->kind == Node::Kind::kArray) {
      const std::optional<size_t> index = ArrayIndex(token);
      if (!index || *index >= node->children.size()) return nullptr;
      node = &node->children[*index];
    } else if (node->kind == Node::Kind::kObject) {
      const auto it = std::lower_bound(node->keys.begin(), node->keys.end(), token);
      if (it == node->keys.end() || *it != token) return nullptr;
      node = &node->children[static_cast<size_t>(it - node->keys.begin())];
    } else {
      return nullptr;  // a scalar has no members
    }
  }
  return node;
}

}  // namespace

Result<std::string> CanonicalizeJson(std::string_view text) {
  Result<Node> root = Parse(text);
  if (!root.ok()) return root.status();
  return ToCanonical(*root, text.size());
}

Result<std::string> CanonicalJsonAt(std::string_view text, std::string_view pointer) {
  Result<std::vector<std::string>> tokens = ParsePointer(pointer);
  if (!tokens.ok()) return tokens.status();
  Result<Node> root = Parse(text);
  if (!root.ok()) return root.status();
  const Node* node = Resolve(*root, *tokens);
  if (node == nullptr) return NotFound("JSON pointer selects no value");
  return ToCanonical(*node, 0);
}

namespace internal {

Status ValidateJsonPointer(std::string_view pointer) {
  return ParsePointer(pointer).status();
}

Result<std::vector<std::optional<std::string>>> CanonicalJsonAtEach(
    std::string_view text, const std::vector<std::string>& pointers) {
  std::vector<std::vector<std::string>> parsed;
  parsed.reserve(pointers.size());
  for (const std::string& pointer : pointers) {
    Result<std::vector<std::string>> tokens = ParsePointer(pointer);
    if (!tokens.ok()) return tokens.status();
    parsed.push_back(std::move(tokens).value());
  }
  Result<Node> root = Parse(text);
  if (!root.ok()) return root.status();
  std::vector<std::optional<std::string>> values;
  values.reserve(parsed.size());
  for (const std::vector<std::string>& tokens : parsed) {
    const Node* node = Resolve(*root, tokens);
    if (node == nullptr) {
      values.emplace_back();
    } else {
      values.emplace_back(ToCanonical(*node, 0));
    }
  }
  return values;
}

}  // namespace internal
}  // namespace idem
