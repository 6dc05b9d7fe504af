function Hello({ name }: { name: string }) {
  return <div className="hi">Hello {name}</div>;
}
