#include "stores/redis/cluster_slots.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <string>

namespace idem::redis_internal {
namespace {

constexpr std::array<uint16_t, 256> MakeCrc16Table() {
  std::array<uint16_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i << 8;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
    }
    table[i] = static_cast<uint16_t>(crc);
  }
  return table;
}
constexpr std::array<uint16_t, 256> kCrc16Table = MakeCrc16Table();

constexpr uint16_t kUnassigned = 0xFFFF;

bool IsString(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

}  // namespace

uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (const char c : data) {
    crc = static_cast<uint16_t>(
        (crc << 8) ^ kCrc16Table[((crc >> 8) ^ static_cast<unsigned char>(c)) & 0xFF]);
  }
  return crc;
}

uint16_t KeySlot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) & (kClusterSlots - 1);
}

Result<std::vector<SlotRange>> ParseClusterSlots(const redisReply* reply,
                                                 const Endpoint& asked) {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
    return Internal("CLUSTER SLOTS: expected an array");
  }
  std::vector<SlotRange> ranges;
  for (size_t i = 0; i < reply->elements; ++i) {
    const redisReply* entry = reply->element[i];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 3 ||
        entry->element[0]->type != REDIS_REPLY_INTEGER ||
        entry->element[1]->type != REDIS_REPLY_INTEGER ||
        entry->element[2]->type != REDIS_REPLY_ARRAY || entry->element[2]->elements < 2) {
      return Internal("CLUSTER SLOTS: malformed slot range");
    }
    const redisReply* master = entry->element[2];
    if (!IsString(master->element[0]) ||
        master->element[1]->type != REDIS_REPLY_INTEGER) {
      return Internal("CLUSTER SLOTS: malformed node");
    }
    SlotRange range;
    range.first = static_cast<int>(entry->element[0]->integer);
    range.last = static_cast<int>(entry->element[1]->integer);
    range.master.host.assign(master->element[0]->str, master->element[0]->len);
    range.master.port = static_cast<int>(master->element[1]->integer);
    if (range.master.host.empty() || range.master.host == "?") {
      range.master.host = asked.host;
    }
    if (range.first < 0 || range.last >= kClusterSlots || range.first > range.last ||
        range.master.port <= 0 || range.master.port > 65535) {
      return Internal("CLUSTER SLOTS: slot range out of bounds");
    }
    ranges.push_back(std::move(range));
  }
  return ranges;
}

Result<std::shared_ptr<const Topology>> Topology::FromRanges(
    const std::vector<SlotRange>& ranges) {
  auto topology = std::make_shared<Topology>();
  topology->slot_master_.assign(kClusterSlots, kUnassigned);
  for (const SlotRange& range : ranges) {
    auto it =
        std::find(topology->masters_.begin(), topology->masters_.end(), range.master);
    if (it == topology->masters_.end()) {
      topology->masters_.push_back(range.master);
      it = topology->masters_.end() - 1;
    }
    const auto index = static_cast<uint16_t>(it - topology->masters_.begin());
    std::fill(topology->slot_master_.begin() + range.first,
              topology->slot_master_.begin() + range.last + 1, index);
  }
  const auto hole = std::find(topology->slot_master_.begin(),
                              topology->slot_master_.end(), kUnassigned);
  if (hole != topology->slot_master_.end()) {
    return Unavailable("the cluster does not serve slot " +
                       std::to_string(hole - topology->slot_master_.begin()));
  }
  return std::shared_ptr<const Topology>(std::move(topology));
}

std::shared_ptr<const Topology> Topology::WithSlot(uint16_t slot,
                                                   const Endpoint& master) const {
  auto copy = std::make_shared<Topology>(*this);
  auto it = std::find(copy->masters_.begin(), copy->masters_.end(), master);
  if (it == copy->masters_.end()) {
    copy->masters_.push_back(master);
    it = copy->masters_.end() - 1;
  }
  copy->slot_master_[slot] = static_cast<uint16_t>(it - copy->masters_.begin());
  return copy;
}

std::optional<Redirect> ParseRedirect(std::string_view error, const Endpoint& from) {
  Redirect redirect;
  if (error.substr(0, 6) == "MOVED ") {
    redirect.kind = Redirect::Kind::kMoved;
    error.remove_prefix(6);
  } else if (error.substr(0, 4) == "ASK ") {
    redirect.kind = Redirect::Kind::kAsk;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const size_t space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  int slot = -1;
  auto [end, ec] = std::from_chars(error.data(), error.data() + space, slot);
  if (ec != std::errc() || end != error.data() + space || slot < 0 ||
      slot >= kClusterSlots) {
    return std::nullopt;
  }
  auto to = ParseEndpoint(error.substr(space + 1));
  if (!to) return std::nullopt;
  if (to->host.empty()) to->host = from.host;
  redirect.slot = static_cast<uint16_t>(slot);
  redirect.to = std::move(*to);
  return redirect;
}

}  // namespace idem::redis_internal
