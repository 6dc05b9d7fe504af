public function getName() { return $this->name; }
