// ScriptedServer: a tiny HTTP/1.1 server on 127.0.0.1:0 for client tests,
// written on raw sockets. Each connection takes the next step of a script:
// answer with a status (and headers), close the connection without an
// answer, or hold it open without answering. It records every request it
// read. One request per connection; the accept loop runs on its own thread
// and polls a stop flag, so the destructor returns within ~50 ms.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace idem::libtest {

struct ScriptStep {
  enum class Kind { kRespond, kDrop, kHang };
  Kind kind = Kind::kRespond;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  static ScriptStep Respond(int status,
                            std::vector<std::pair<std::string, std::string>> headers = {},
                            std::string body = "") {
    return {Kind::kRespond, status, std::move(headers), std::move(body)};
  }
  static ScriptStep Drop() { return {Kind::kDrop, 0, {}, ""}; }
  static ScriptStep Hang() { return {Kind::kHang, 0, {}, ""}; }
};

struct SeenRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  std::string Header(const std::string& lower_name) const;
};

class ScriptedServer {
 public:
  // The last step repeats once the script is used up.
  explicit ScriptedServer(std::vector<ScriptStep> script);
  ~ScriptedServer();
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<SeenRequest> requests() const;

 private:
  void Loop();
  void Serve(int fd, const ScriptStep& step);

  std::vector<ScriptStep> script_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<SeenRequest> requests_;
  std::vector<int> held_;  // hung connections, closed at the end
  std::thread thread_;
};

}  // namespace idem::libtest
