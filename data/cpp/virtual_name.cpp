virtual std::string name() const override { return "circle"; }
