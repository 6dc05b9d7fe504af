func (p *Point) String() string { return fmt.Sprintf("%d", p.X) }
