// Reading HTTP messages and writing bytes on the hot path without a trip
// through Asio's scheduler when none is needed.
//
// Beast's http::async_read* post their completion when the bytes already
// buffered satisfy them (a handler must not run inside its initiating
// call), and an async write always completes through the reactor. A
// request's head and small body, and a small upstream response, usually
// arrive in one read, and a small write fits the socket's send buffer at
// once: those trips were about a fifth of a new-key request's instructions
// (docs/performance.md).
//
// ParseBuffered feeds a parser the bytes already read, synchronously;
// ParseAfterRead handles the answer of one socket read the way
// http::read_some does (end of stream included); the parsing, its limits and
// its errors stay Beast's (basic_parser::put and put_eof). SendNow writes
// what a non-blocking socket takes at once; the caller sends the rest, if
// any, with asio::async_write.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>

namespace idem::gateway {

// The most one read asks for (Beast's own limit for its reads).
inline constexpr size_t kMaxReadSize = 65536;

// Room for one read: what the buffer has space for, at least 512 bytes, at
// most kMaxReadSize (beast::read_size).
inline boost::asio::mutable_buffer ReadSpace(boost::beast::flat_buffer& buffer) {
  return buffer.prepare(boost::beast::read_size(buffer, kMaxReadSize));
}

// Feeds `parser` what `buffer` holds and drops the bytes it used. Like one
// step of http::read_some: success once the parser finished an element (the
// header, or body bytes), need_more when it wants bytes not read yet.
template <bool isRequest>
boost::system::error_code ParseBuffered(
    boost::beast::http::basic_parser<isRequest>& parser,
    boost::beast::flat_buffer& buffer) {
  if (buffer.size() == 0) return boost::beast::http::error::need_more;
  boost::system::error_code ec;
  buffer.consume(parser.put(buffer.data(), ec));
  return ec;
}

// After one read into `buffer` (already committed) that ended with
// `read_ec`: the end of the stream completes a message that runs until
// close, is a partial message after some bytes and end_of_stream before any
// (as http::read_some answers); otherwise the parser's answer to the bytes.
template <bool isRequest>
boost::system::error_code ParseAfterRead(
    boost::beast::http::basic_parser<isRequest>& parser,
    boost::beast::flat_buffer& buffer, const boost::system::error_code& read_ec) {
  if (read_ec == boost::asio::error::eof) {
    if (!parser.got_some()) return boost::beast::http::error::end_of_stream;
    boost::system::error_code ec;
    parser.put_eof(ec);
    return ec;
  }
  if (read_ec) return read_ec;
  return ParseBuffered(parser, buffer);
}

// Writes what `socket` takes without waiting and returns the part of
// `buffers` that is left: empty when all went out. A failed send leaves
// everything, so the asynchronous write that follows reports the error.
template <typename Buffers>
boost::beast::buffers_suffix<Buffers> SendNow(boost::asio::ip::tcp::socket& socket,
                                              const Buffers& buffers) {
  boost::beast::buffers_suffix<Buffers> rest(buffers);
  boost::system::error_code ec;
  // Once per socket: a synchronous send must answer would_block, not wait.
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  if (ec) return rest;
  const size_t sent = socket.write_some(buffers, ec);
  if (!ec) rest.consume(sent);
  return rest;
}

}  // namespace idem::gateway
