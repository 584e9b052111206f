#include "lib/scripted_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <sstream>

namespace idem::libtest {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 409:
      return "Conflict";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

// Reads one request (head and Content-Length body); false on EOF/time-out.
bool ReadRequest(int fd, SeenRequest& out) {
  std::string data;
  char buffer[4096];
  size_t head_end = std::string::npos;
  size_t body_size = 0;
  for (int reads = 0; reads < 1000; ++reads) {
    if (head_end == std::string::npos) {
      head_end = data.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::istringstream head(data.substr(0, head_end));
        std::string line;
        std::getline(head, line);
        std::istringstream first(line);
        first >> out.method >> out.target;
        while (std::getline(head, line)) {
          if (!line.empty() && line.back() == '\r') line.pop_back();
          const size_t colon = line.find(':');
          if (colon == std::string::npos) continue;
          std::string value = line.substr(colon + 1);
          value.erase(0, value.find_first_not_of(' '));
          out.headers.emplace_back(Lower(line.substr(0, colon)), value);
          if (Lower(line.substr(0, colon)) == "content-length") {
            body_size = std::strtoul(value.c_str(), nullptr, 10);
          }
        }
      }
    }
    if (head_end != std::string::npos && data.size() >= head_end + 4 + body_size) {
      out.body = data.substr(head_end + 4, body_size);
      return true;
    }
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    data.append(buffer, static_cast<size_t>(n));
  }
  return false;
}

}  // namespace

std::string SeenRequest::Header(const std::string& lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return "";
}

ScriptedServer::ScriptedServer(std::vector<ScriptStep> script)
    : script_(std::move(script)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0) {
    std::abort();
  }
  socklen_t size = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &size);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Loop(); });
}

ScriptedServer::~ScriptedServer() {
  stop_ = true;
  thread_.join();
  close(listen_fd_);
  for (int fd : held_) close(fd);
}

std::vector<SeenRequest> ScriptedServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void ScriptedServer::Loop() {
  size_t next = 0;
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    timeval timeout{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    const ScriptStep& step = script_[std::min(next, script_.size() - 1)];
    ++next;
    Serve(fd, step);
  }
}

void ScriptedServer::Serve(int fd, const ScriptStep& step) {
  SeenRequest request;
  if (!ReadRequest(fd, request)) {
    close(fd);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(request);
  }
  switch (step.kind) {
    case ScriptStep::Kind::kDrop:
      close(fd);
      return;
    case ScriptStep::Kind::kHang:
      held_.push_back(fd);
      return;
    case ScriptStep::Kind::kRespond:
      break;
  }
  std::string response =
      "HTTP/1.1 " + std::to_string(step.status) + " " + Reason(step.status) + "\r\n";
  for (const auto& [name, value] : step.headers) response += name + ": " + value + "\r\n";
  response += "Content-Length: " + std::to_string(step.body.size()) +
              "\r\nConnection: close\r\n\r\n" + step.body;
  size_t sent = 0;
  while (sent < response.size()) {
    const ssize_t n =
        send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  close(fd);
}

}  // namespace idem::libtest
