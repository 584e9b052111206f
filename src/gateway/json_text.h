// Writing JSON text by hand where a document model would cost more than it
// gives (problem bodies, access-log lines). Pure, thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace idem::gateway {

// Appends `text` as a JSON string literal, quotes included. Control
// characters are escaped; bytes that are not valid UTF-8 become U+FFFD, so
// the output is always valid JSON.
void AppendJsonString(std::string& out, std::string_view text);

}  // namespace idem::gateway
