public string Name { get; set; }
