public:
  int size() const { return n_; }
