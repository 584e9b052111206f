// run_once_basics: wrap functions so that each key runs them once.
//
//   run_once_basics [STORE_URI]     (default: memory:)
//
// Shows the three things RunOnce does: a duplicate call gets the stored
// result without running the function again; a failed call releases its
// key so a retry runs again, unless the failure is final; and a
// OnceFunction computes its key from its arguments with DeriveKey.
// Exits 0 when everything behaved as described.
#include <iostream>
#include <string>

#include "idem/keys.h"
#include "idem/open_store.h"
#include "idem/run_once.h"
#include "idem/run_once_json.h"

namespace {

int failures = 0;

void Expect(bool condition, const char* what) {
  std::cout << (condition ? "  ok: " : "  FAILED: ") << what << '\n';
  failures += !condition;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string uri = argc > 1 ? argv[1] : "memory:";
  auto store = idem::OpenStore(uri);
  if (!store.ok()) {
    std::cerr << "cannot open " << uri << ": " << store.status() << '\n';
    return 2;
  }
  auto engine = std::make_shared<idem::Engine>(*store);

  std::cout << "1. a duplicate call replays the stored result\n";
  idem::RunOnce<std::string> once(engine);
  int charges = 0;
  auto charge = [&] { return "ch_" + std::to_string(++charges); };
  auto first = once.Call("charge-order-42", charge);
  auto again = once.Call("charge-order-42", charge);
  Expect(first.ok() && again.ok() && *first == *again, "same receipt both times");
  Expect(charges == 1, "the card was charged once");

  std::cout << "2. errors release the key; final errors stick\n";
  int attempts = 0;
  auto flaky = [&]() -> idem::Result<std::string> {
    if (++attempts == 1) return idem::Unavailable("bank timed out");
    return std::string("refund-ok");
  };
  Expect(!once.Call("refund-7", flaky).ok(), "the first attempt fails");
  Expect(once.Call("refund-7", flaky).ok() && attempts == 2, "the retry runs again");
  int declines = 0;
  auto declined = [&]() -> std::string {
    ++declines;
    throw idem::FinalError(idem::InvalidArgument("card declined"));
  };
  auto d1 = once.Call("charge-order-43", declined);
  auto d2 = once.Call("charge-order-43", declined);
  Expect(d1.status() == d2.status() && declines == 1,
         "a final error is stored and returned again");

  std::cout << "3. keys from arguments, results as JSON\n";
  int quotes = 0;
  idem::OnceFunction<boost::json::value(std::string, int)> quote(
      idem::RunOnce<boost::json::value>(engine),
      [](const std::string& sku, const int& quantity) {
        return idem::DeriveKey("sku/" + sku, "quote",
                               "{\"quantity\":" + std::to_string(quantity) + "}");
      },
      [&](std::string sku, int quantity) -> idem::Result<boost::json::value> {
        ++quotes;
        return boost::json::value{{"sku", sku}, {"quantity", quantity}, {"cents", 999}};
      });
  auto q1 = quote("book-42", 2);
  auto q2 = quote("book-42", 2);
  auto q3 = quote("book-42", 3);
  Expect(q1.ok() && q2.ok() && *q1 == *q2, "same arguments, same stored quote");
  Expect(q3.ok() && quotes == 2, "other arguments, another key");
  if (q1.ok()) std::cout << "  quote: " << boost::json::serialize(*q1) << '\n';

  std::cout << (failures == 0 ? "run_once_basics: ok\n" : "run_once_basics: FAILED\n");
  return failures == 0 ? 0 : 1;
}
