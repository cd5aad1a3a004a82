#pragma once

// A value kept out of line, and not at all while it is empty: for the parts
// of a large record that most records leave empty (a simulated test's
// command, a test without software or tag constraints). Each such part costs
// its record a pointer instead of its full size, so the records of a burst
// of tests touch fewer cache lines and fewer fresh pages.

#include <memory>
#include <utility>

namespace alb {

/// A `T` on the heap, or nothing while it equals an empty `T`; copies deep.
/// `T` needs a default constructor that makes it empty and `empty()`.
template<class T>
class boxed {
public:
  /// Empty.
  boxed() = default;

  /// A deep copy of `o`.
  boxed(const boxed& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}

  /// Takes over `o`'s value; `o` is left empty.
  boxed(boxed&& o) noexcept = default;

  /// A deep copy of `o`.
  boxed& operator=(const boxed& o) {
    if (this != &o)
      p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
    return *this;
  }

  /// Takes over `o`'s value; `o` is left empty.
  boxed& operator=(boxed&& o) noexcept = default;

  /// Holds `v` (nothing, and frees what it held, if `v` is empty).
  boxed& operator=(T v) {
    if (v.empty())
      p_.reset();
    else if (p_)
      *p_ = std::move(v);
    else
      p_ = std::make_unique<T>(std::move(v));
    return *this;
  }

  /// Whether it holds nothing (or an empty `T`).
  bool empty() const { return !p_ || p_->empty(); }

  /// The value; an empty `T` while it holds nothing.
  const T& operator*() const { return p_ ? *p_ : none(); }

  /// Moves the value out and leaves it empty.
  T take() {
    if (!p_)
      return T{};
    T v = std::move(*p_);
    p_.reset();
    return v;
  }

  /// The value's members.
  const T* operator->() const { return &**this; }

private:
  static const T& none() {
    static const T value{};
    return value;
  }

  std::unique_ptr<T> p_;
};

} // namespace alb
