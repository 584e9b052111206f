#include <charconv>

#include "idem/engine.h"

namespace idem {
namespace {

// Applies one rule ("2xx", "!409", ...) to `stored`.
Status ApplyRule(const std::string& rule, std::bitset<600>& stored) {
  std::string_view text = rule;
  const bool remove = !text.empty() && text.front() == '!';
  if (remove) text.remove_prefix(1);
  auto bad = [&rule] {
    return InvalidArgument("status rule \"" + rule +
                           "\" is not NNN, Nxx, !NNN or !Nxx (N from 1 to 5)");
  };
  if (text.size() != 3) return bad();
  if (text[1] == 'x' && text[2] == 'x') {
    if (text[0] < '1' || text[0] > '5') return bad();
    const size_t first = static_cast<size_t>(text[0] - '0') * 100;
    for (size_t s = first; s < first + 100; ++s) stored[s] = !remove;
    return Status::Ok();
  }
  int status = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), status);
  if (ec != std::errc() || end != text.data() + text.size() || status < 100 ||
      status > 599) {
    return bad();
  }
  stored[static_cast<size_t>(status)] = !remove;
  return Status::Ok();
}

}  // namespace

const std::vector<std::string>& StatusPolicy::DefaultRules() {
  static const std::vector<std::string> rules = {"2xx",  "4xx",  "!408",
                                                 "!409", "!425", "!429"};
  return rules;
}

StatusPolicy::StatusPolicy() {
  for (const auto& rule : DefaultRules()) {
    Status applied = ApplyRule(rule, stored_);
    (void)applied;  // the default rules are valid
  }
}

Result<StatusPolicy> StatusPolicy::Parse(const std::vector<std::string>& rules) {
  StatusPolicy policy;
  policy.stored_.reset();
  for (const auto& rule : rules) {
    if (Status s = ApplyRule(rule, policy.stored_); !s.ok()) return s;
  }
  return policy;
}

}  // namespace idem
